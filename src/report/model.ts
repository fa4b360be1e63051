/**
 * The report model: what the report page shows of a study, built from the study's stored
 * events (payload rows with their verdicts, and trial ends) in arrival order. Pure: the
 * events come from the caller (see src/store/study-log.ts), nothing is read or written here.
 */
import { SYMPTOM_CODES, type PayloadV1, type SymptomCode, type TrialEndState, type Verdict } from "../diagnosis/types.js";
import type { BodyFormat, StoredEvent, StoredStudy } from "../store/stored-types.js";
import { storedPayload } from "../store/stored-payload.js";

/** How a trial ended (its trial.end state), or "unfinished" when no end was stored (running, or its host died). */
export type TrialState = TrialEndState | "unfinished";

/**
 * What the curves are coloured by, in this order of precedence:
 * - `stopped`: bttackler's verdict stopped the trial;
 * - `protected`: a symptom persisted but cohort protection held the stop back;
 * - `complete`: ended complete without either;
 * - `ended`: pruned or failed by the host without a bttackler stop;
 * - `unfinished`: no end stored.
 */
export type TrialOutcome = "stopped" | "protected" | "complete" | "ended" | "unfinished";

export const TRIAL_OUTCOMES: readonly TrialOutcome[] = ["stopped", "protected", "complete", "ended", "unfinished"];

/** The metrics drawn as curves, when a study reports them. */
export const CURVE_METRICS = ["train_loss", "val_loss", "train_acc", "val_acc"] as const;
export type CurveMetric = (typeof CURVE_METRICS)[number];

/** One heat-map cell: log10 of a layer's grad_abs_mean at a step; "nf" non-finite, "zero" exactly 0, null not reported. */
export type GradCell = number | "nf" | "zero" | null;

export interface TrialReport {
  trial: string;
  state: TrialState;
  outcome: TrialOutcome;
  /** The steps reported, ascending. */
  steps: number[];
  lastStep: number | null;
  /** The step at which bttackler stopped the trial. */
  stopStep: number | null;
  /** The symptoms that stopped it (action "stop" at the stop step). */
  stopSymptoms: SymptomCode[];
  /** Every symptom detected at any step, whatever its action (stop, watch or protected). */
  seenSymptoms: SymptomCode[];
  reason: string | null;
  /** Per curve metric, its value at each of `steps` (null: not reported or non-finite). */
  curves: Partial<Record<CurveMetric, (number | null)[]>>;
  /** Layer names, input side first (`layer[i]` when unnamed). */
  layers: string[];
  /** grad[layer][i]: the layer's gradient at steps[i]. */
  grad: GradCell[][];
  /** Payload rows whose body or verdict could not be read (left out of everything else). */
  unreadable: number;
}

export interface SymptomCount {
  code: SymptomCode;
  /** Trials stopped with this symptom among their stop symptoms. */
  stopped: number;
  /** Trials in which it was detected at least once. */
  seen: number;
}

export interface StudyCounts {
  trials: number;
  payloads: number;
  stopped: number;
  protected: number;
  complete: number;
  ended: number;
  unfinished: number;
}

export interface StudyReport {
  study: string;
  created_at: string;
  max_steps: number | null;
  counts: StudyCounts;
  /** The symptoms detected in the study, in SYMPTOM_CODES order. */
  symptoms: SymptomCount[];
  /** Trials in order of their first event. */
  trials: TrialReport[];
  /** The curve metrics with at least one finite value. */
  curveMetrics: CurveMetric[];
  /** Loss curves whose finite values are all > 0: drawn on a log scale (a diverging loss would flatten the others). */
  logScaleMetrics: CurveMetric[];
  /** The lowest and highest finite log10 gradient of the study, or null when none was reported. */
  gradRange: [number, number] | null;
}

export interface ReportModel {
  /** What the report was made from, e.g. the database file's name. */
  source: string;
  generatedAt: string;
  studies: StudyReport[];
}

/** Significant digits kept of a curve value: plenty for a chart, and the page stays small. */
const CURVE_DIGITS = 5;

function round(value: number, digits: number): number {
  return Number(value.toPrecision(digits));
}

function curveValue(value: number | null | undefined): number | null {
  return typeof value === "number" && Number.isFinite(value) ? round(value, CURVE_DIGITS) : null;
}

function gradCell(value: number | null | undefined): GradCell {
  if (value === undefined) return null;
  if (value === null || !Number.isFinite(value)) return "nf";
  if (value <= 0) return "zero";
  return Math.round(Math.log10(value) * 1000) / 1000;
}

function parseVerdict(text: string): Verdict | undefined {
  try {
    const v = JSON.parse(text) as Verdict | null;
    return v !== null && typeof v === "object" && Array.isArray(v.symptoms) ? v : undefined;
  } catch {
    return undefined;
  }
}

/** A trial's report under construction. */
class TrialAccumulator {
  readonly steps: number[] = [];
  readonly curves = new Map<CurveMetric, (number | null)[]>();
  /** Per step, the layer gradients of that step. */
  readonly gradByStep: GradCell[][] = [];
  readonly layerNames: (string | undefined)[] = [];
  readonly seen = new Set<SymptomCode>();
  state: TrialState = "unfinished";
  stopVerdict: Verdict | undefined;
  held = false;
  unreadable = 0;

  constructor(readonly trial: string) {}

  addPayload(body: string, format: BodyFormat, verdictText: string): void {
    let payload: PayloadV1;
    try {
      payload = storedPayload(body, format);
    } catch {
      this.unreadable++;
      return;
    }
    const verdict = parseVerdict(verdictText);
    const index = this.steps.length;
    this.steps.push(payload.step);
    for (const metric of CURVE_METRICS) {
      const value = curveValue(payload.metrics?.[metric]);
      let series = this.curves.get(metric);
      if (series === undefined) {
        if (value === null) continue;
        series = new Array<number | null>(index).fill(null);
        this.curves.set(metric, series);
      }
      series.push(value);
    }
    const layers = payload.layers ?? [];
    this.gradByStep.push(layers.map((l) => gradCell(l.grad_abs_mean)));
    layers.forEach((l, i) => {
      if (this.layerNames[i] === undefined && l.name !== undefined) this.layerNames[i] = l.name;
    });
    if (verdict === undefined) return;
    for (const s of verdict.symptoms) {
      this.seen.add(s.code);
      if (s.action === "protected") this.held = true;
    }
    if (this.stopVerdict === undefined && verdict.stop && verdict.stopped_at === payload.step) this.stopVerdict = verdict;
  }

  build(): TrialReport {
    const layerCount = this.gradByStep.reduce((n, cells) => Math.max(n, cells.length), this.layerNames.length);
    const layers = Array.from({ length: layerCount }, (_, i) => this.layerNames[i] ?? `layer[${i}]`);
    const grad = layers.map((_, li) => this.gradByStep.map((cells) => cells[li] ?? null));
    const curves: Partial<Record<CurveMetric, (number | null)[]>> = {};
    for (const [metric, series] of this.curves) curves[metric] = series;
    const stop = this.stopVerdict;
    const stopSymptoms = stop === undefined ? [] : [...new Set(stop.symptoms.filter((s) => s.action === "stop").map((s) => s.code))];
    return {
      trial: this.trial,
      state: this.state,
      outcome: outcomeOf(stop !== undefined, this.held, this.state),
      steps: this.steps,
      lastStep: this.steps.length === 0 ? null : (this.steps[this.steps.length - 1] ?? null),
      stopStep: stop?.step ?? null,
      stopSymptoms: SYMPTOM_CODES.filter((c) => stopSymptoms.includes(c)),
      seenSymptoms: SYMPTOM_CODES.filter((c) => this.seen.has(c)),
      reason: stop?.reason ?? null,
      curves,
      layers,
      grad,
      unreadable: this.unreadable,
    };
  }
}

function outcomeOf(stopped: boolean, held: boolean, state: TrialState): TrialOutcome {
  if (stopped) return "stopped";
  if (held) return "protected";
  if (state === "complete") return "complete";
  if (state === "unfinished") return "unfinished";
  return "ended";
}

/** Builds a study's report one event at a time (events in arrival order), so that a caller can show progress. */
export class StudyReportBuilder {
  private readonly trials = new Map<string, TrialAccumulator>();
  private payloads = 0;

  constructor(private readonly study: StoredStudy) {}

  add(event: StoredEvent): void {
    let trial = this.trials.get(event.trial);
    if (trial === undefined) {
      trial = new TrialAccumulator(event.trial);
      this.trials.set(event.trial, trial);
    }
    if (event.kind === "end") {
      trial.state = event.state;
      return;
    }
    this.payloads++;
    trial.addPayload(event.body, event.format, event.verdict);
  }

  build(): StudyReport {
    const trials = [...this.trials.values()].map((t) => t.build());
    const count = (outcome: TrialOutcome): number => trials.filter((t) => t.outcome === outcome).length;
    const symptoms = SYMPTOM_CODES.map((code) => ({
      code,
      stopped: trials.filter((t) => t.stopSymptoms.includes(code)).length,
      seen: trials.filter((t) => t.seenSymptoms.includes(code)).length,
    })).filter((s) => s.seen > 0);
    const curveMetrics = CURVE_METRICS.filter((m) => trials.some((t) => t.curves[m]?.some((v) => v !== null)));
    const logScaleMetrics = curveMetrics.filter((m) => m.endsWith("_loss") && trials.every((t) => (t.curves[m] ?? []).every((v) => v === null || v > 0)));
    let low = Infinity;
    let high = -Infinity;
    for (const t of trials) {
      for (const row of t.grad) {
        for (const cell of row) {
          if (typeof cell !== "number") continue;
          low = Math.min(low, cell);
          high = Math.max(high, cell);
        }
      }
    }
    return {
      study: this.study.study,
      created_at: this.study.created_at,
      max_steps: this.study.config.max_steps,
      counts: {
        trials: trials.length,
        payloads: this.payloads,
        stopped: count("stopped"),
        protected: count("protected"),
        complete: count("complete"),
        ended: count("ended"),
        unfinished: count("unfinished"),
      },
      symptoms,
      trials,
      curveMetrics,
      logScaleMetrics,
      gradRange: low <= high ? [low, high] : null,
    };
  }
}

/** A study's report from all of its events. */
export function buildStudyReport(study: StoredStudy, events: Iterable<StoredEvent>): StudyReport {
  const builder = new StudyReportBuilder(study);
  for (const event of events) builder.add(event);
  return builder.build();
}
