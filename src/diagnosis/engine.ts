/**
 * The diagnosis engine of one study: payloads and trial ends in, verdicts out.
 *
 * Pure and deterministic: no I/O, no clock, no randomness. The same stream of
 * events always yields the same verdicts, so the service can rebuild its state by
 * replaying what it stored, and `bttackler replay` gives the service's answers.
 *
 * Per payload, in this order:
 *  1. a step already answered returns the stored verdict (idempotent re-delivery);
 *     a trial already stopped answers stop again without further diagnosis;
 *  2. protection: the trial's protection metric (when the payload lacks it, the study's
 *     objective, src/diagnosis/objective.ts) is compared with the cohort of that metric at
 *     its step (other trials only), then added to that cohort; once protected, always;
 *  3. every enabled rule whose stage window and min_step admit the step is checked;
 *     NF first, and when NF fires no other rule is checked; a rule comparing trials (LAG)
 *     sees the other trials' values at the step (peers.ts), to which this report's are
 *     added after the checks; a trial that stops or ends stays among the peers of later
 *     steps at its last value; a rule forecasting the end (PROG) sees the curves of the
 *     trials that completed and the last values of those that stopped or ended otherwise;
 *  4. a family detected at this step counts one more consecutive detection; a step
 *     where it is not detected (healthy, inputs missing, outside its stage or
 *     min_step, or skipped after NF) resets the count; it stops the trial when the count reaches
 *     its persistence, unless the rule is protectable and the trial protected, or the step is
 *     the trial's last planned one (max_steps - 1) and the family is not NF: the training is
 *     done then, and a stop would only lose its result (a host prunes or kills the trial).
 */
import { Cohort } from "./cohort.js";
import { Peers } from "./peers.js";
import { EngineInputError } from "./errors.js";
import type { RuleContext, Series, SymptomRule } from "./rule.js";
import { inStage } from "./rule.js";
import { createRules } from "./rules.js";
import { objectiveCandidates, type ObjectiveCandidate, objectiveValue } from "./objective.js";
import { finite } from "./stats.js";
import type { PayloadV1, StudyConfig, Symptom, SymptomCode, TrialEndState, Verdict } from "./types.js";

interface MutableSeries {
  steps: number[];
  values: number[];
}

const EMPTY_SERIES: Series = { steps: [], values: [] };

class TrialState {
  lastStep = -1;
  maxSteps: number | undefined;
  protected = false;
  stop: Verdict | undefined;
  ended: TrialEndState | undefined;
  /** Whether the trial has left the peers (stopped or ended). */
  departed = false;
  readonly series = new Map<string, MutableSeries>();
  readonly streak = new Map<SymptomCode, number>();
  readonly verdicts = new Map<number, Verdict>();

  record(step: number, metrics: PayloadV1["metrics"]): void {
    for (const [name, raw] of Object.entries(metrics ?? {})) {
      const v = finite(raw);
      if (v === undefined) continue;
      let s = this.series.get(name);
      if (s === undefined) {
        s = { steps: [], values: [] };
        this.series.set(name, s);
      }
      s.steps.push(step);
      s.values.push(v);
    }
  }
}

export interface TrialSummary {
  trial: string;
  last_step: number;
  protected: boolean;
  stopped_at?: number;
  reason?: string;
  ended?: TrialEndState;
}

export class DiagnosisEngine {
  private readonly rules: SymptomRule[];
  /** Protection's cohorts by metric: its own metric's, and the objective's it falls back to. */
  private readonly cohorts = new Map<string, Cohort>();
  /** What protection compares: its own metric, then the objective's candidates. */
  private readonly protectionCandidates: ObjectiveCandidate[];
  private readonly peers: Peers;
  /** Per metric a rule reads outcomes of: the finished curves and the departed trials' last values. */
  private readonly outcomes = new Map<string, { finished: Series[]; departed: number[] }>();
  private readonly trials = new Map<string, TrialState>();

  constructor(readonly config: StudyConfig) {
    this.rules = createRules(config.rules, config.objective);
    this.protectionCandidates = [{ metric: config.protection.metric, direction: config.protection.direction }, ...objectiveCandidates(config.objective)];
    this.peers = new Peers(new Set(this.rules.flatMap((rule) => rule.peerMetrics ?? [])));
    for (const metric of this.rules.flatMap((rule) => rule.outcomeMetrics ?? [])) this.outcomes.set(metric, { finished: [], departed: [] });
  }

  /** Diagnoses one payload of a trial. Throws EngineInputError, changing nothing, for an out-of-order step or an ended trial. */
  report(trialId: string, payload: PayloadV1): Verdict {
    const step = payload.step;
    if (!Number.isInteger(step) || step < 0) {
      throw new EngineInputError(`step must be an integer >= 0, got ${String(step)}`);
    }
    const trial = this.trials.get(trialId) ?? new TrialState();
    const known = trial.verdicts.get(step);
    if (known !== undefined) return known;
    if (trial.ended !== undefined) {
      throw new EngineInputError(`trial ${trialId} already ended (${trial.ended}); step ${step} is not accepted`);
    }
    if (step < trial.lastStep) {
      throw new EngineInputError(
        `step ${step} of trial ${trialId} arrives after step ${trial.lastStep}; steps must increase`,
      );
    }
    this.trials.set(trialId, trial);
    trial.lastStep = step;
    if (payload.max_steps !== undefined) trial.maxSteps = payload.max_steps;

    const verdict = trial.stop ? this.afterStop(trialId, step, trial.stop) : this.diagnose(trialId, trial, payload);
    trial.verdicts.set(step, verdict);
    return verdict;
  }

  /**
   * Records the end of a trial; later payloads of it are refused. Ending twice keeps the
   * first state. Returns true when this call ended the trial, false when it had ended before.
   * Throws EngineInputError, changing nothing, for a trial that never reported a step.
   */
  end(trialId: string, state: TrialEndState): boolean {
    const trial = this.trials.get(trialId);
    if (trial === undefined) throw new EngineInputError(`unknown trial ${trialId}: it reported no step, so it cannot end`);
    if (trial.ended !== undefined) return false;
    trial.ended = state;
    this.depart(trial);
    return true;
  }

  /** How many trials the study has seen (reported or ended). */
  get trialCount(): number {
    return this.trials.size;
  }

  /** Whether the trial reported at least one step (only such a trial can be assessed, listed or ended). */
  knows(trialId: string): boolean {
    return this.trials.has(trialId);
  }

  /** Whether a verdict for this step of the trial exists (a new report of it would be a re-delivery). */
  has(trialId: string, step: number): boolean {
    return this.trials.get(trialId)?.verdicts.has(step) ?? false;
  }

  /** The verdict of a trial at a step, or at its latest step when `step` is undefined. */
  verdict(trialId: string, step?: number): Verdict | undefined {
    const trial = this.trials.get(trialId);
    if (trial === undefined) return undefined;
    return trial.verdicts.get(step ?? trial.lastStep);
  }

  /** The verdicts of a trial in step order. */
  history(trialId: string): Verdict[] {
    const trial = this.trials.get(trialId);
    if (trial === undefined) return [];
    return [...trial.verdicts.values()].sort((a, b) => a.step - b.step);
  }

  trialSummaries(): TrialSummary[] {
    return [...this.trials].map(([trial, t]) => ({
      trial,
      last_step: t.lastStep,
      protected: t.protected,
      ...(t.stop ? { stopped_at: t.stop.step, reason: t.stop.reason as string } : {}),
      ...(t.ended ? { ended: t.ended } : {}),
    }));
  }

  private afterStop(trialId: string, step: number, stop: Verdict): Verdict {
    return {
      trial: trialId,
      step,
      stop: true,
      protected: stop.protected,
      symptoms: [],
      reason: `already stopped at step ${stop.step}: ${stop.reason ?? ""}`,
      stopped_at: stop.step,
    };
  }

  private diagnose(trialId: string, trial: TrialState, payload: PayloadV1): Verdict {
    const step = payload.step;
    this.protect(trial, payload);
    trial.record(step, payload.metrics);

    const maxSteps = trial.maxSteps ?? this.config.max_steps ?? undefined;
    const ctx: RuleContext = {
      step,
      maxSteps,
      payload,
      series: (metric) => trial.series.get(metric) ?? EMPTY_SERIES,
      peers: (metric) => this.peers.view(metric, step),
      outcomes: (metric) => this.outcomes.get(metric),
    };

    const symptoms: Symptom[] = [];
    let nonFinite = false;
    const finalStep = maxSteps !== undefined && step === maxSteps - 1;
    for (const rule of this.rules) {
      const o = rule.options;
      const applies = !nonFinite && step >= o.min_step && inStage(o.stage, step, maxSteps);
      const findings = applies ? rule.check(ctx) : [];
      if (findings.length === 0) {
        trial.streak.set(rule.code, 0);
        continue;
      }
      if (rule.code === "NF") nonFinite = true;
      const count = (trial.streak.get(rule.code) ?? 0) + 1;
      trial.streak.set(rule.code, count);
      const action =
        count < o.persistence
          ? "watch"
          : o.protectable && trial.protected
            ? "protected"
            : finalStep && rule.code !== "NF"
              ? "last_step"
              : "stop";
      for (const f of findings) {
        symptoms.push({ code: rule.code, rule: f.rule, message: f.message, evidence: f.evidence, action, count, persistence: o.persistence });
      }
    }

    for (const metric of this.peers.tracked) {
      const v = finite(payload.metrics?.[metric]);
      if (v !== undefined) this.peers.add(metric, step, v);
    }

    const stopping = symptoms.filter((s) => s.action === "stop");
    const verdict: Verdict = { trial: trialId, step, stop: stopping.length > 0, protected: trial.protected, symptoms };
    if (verdict.stop) {
      verdict.reason = stopping.map((s) => `${s.code} ${s.rule}: ${s.message}`).join("; ");
      verdict.stopped_at = step;
      trial.stop = verdict;
      this.depart(trial);
    }
    return verdict;
  }

  /**
   * A trial leaves the study: it stays among the peers of later steps at its last value of
   * each metric, and joins the outcomes: its curve when it completed unstopped, else its last value.
   */
  private depart(trial: TrialState): void {
    if (trial.departed) return;
    trial.departed = true;
    for (const metric of this.peers.tracked) {
      const values = trial.series.get(metric)?.values;
      const last = values?.[values.length - 1];
      if (last !== undefined) this.peers.depart(metric, trial.lastStep, last);
    }
    for (const [metric, outcome] of this.outcomes) {
      const series = trial.series.get(metric);
      const last = series?.values[series.values.length - 1];
      if (series === undefined || last === undefined) continue;
      if (trial.ended === "complete" && trial.stop === undefined) outcome.finished.push(series);
      else outcome.departed.push(last);
    }
  }

  /**
   * Protection compares the trial's protection metric with the cohort at its step; a payload
   * without that metric is compared by the objective instead (each metric its own cohort).
   */
  private protect(trial: TrialState, payload: PayloadV1): void {
    const p = this.config.protection;
    if (!p.enabled) return;
    const judged = objectiveValue(this.protectionCandidates, payload);
    if (judged === undefined) return;
    let cohort = this.cohorts.get(judged.metric);
    if (cohort === undefined) {
      cohort = new Cohort({ ...p, metric: judged.metric, direction: judged.direction });
      this.cohorts.set(judged.metric, cohort);
    }
    if (!trial.protected && cohort.qualifies(payload.step, judged.value)) trial.protected = true;
    cohort.add(payload.step, judged.value);
  }
}
