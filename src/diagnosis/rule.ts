/**
 * What a symptom rule sees and returns.
 *
 * A rule is a pure function of the current payload and the trial's own history.
 * Enabling, stage windows, `min_step`, persistence and cohort protection are
 * applied by the engine around every rule in the same way, so a rule file holds
 * only its formula.
 */
import type { Evidence, LayerIndicators, PayloadV1, ProgressGuardOptions, RuleOptions, SymptomCode } from "./types.js";
import type { PeerView } from "./peers.js";
import { finite, fmt, relativeFall } from "./stats.js";

/** One condition of a family that holds at this step. */
export interface Finding {
  rule: string;
  message: string;
  evidence: Evidence;
}

/** The finite values of one metric, in step order, up to and including the current step. */
export interface Series {
  readonly steps: readonly number[];
  readonly values: readonly number[];
}

export interface RuleContext {
  readonly step: number;
  /** Planned steps, or undefined when neither the payload nor the config says. */
  readonly maxSteps: number | undefined;
  readonly payload: PayloadV1;
  /** Finite values reported so far for a metric (current step included). */
  series(metric: string): Series;
  /** The other trials at this step for a metric a rule declared in `peerMetrics`; undefined otherwise. */
  peers(metric: string): PeerView | undefined;
  /** How the trials that left the study ended, for a metric a rule declared in `outcomeMetrics`; undefined otherwise. */
  outcomes(metric: string): Outcomes | undefined;
}

/** The trials that have left the study, for one metric, in the order they left. */
export interface Outcomes {
  /** The curves of the trials that ended "complete" (not stopped), each to its last step. */
  readonly finished: readonly Series[];
  /** The last values of the trials that were stopped or ended otherwise (pruned, failed). */
  readonly departed: readonly number[];
}

export interface SymptomRule {
  readonly code: SymptomCode;
  readonly options: RuleOptions;
  /** Metrics whose values across trials the rule compares (the engine keeps their peers). */
  readonly peerMetrics?: readonly string[];
  /** Metrics whose outcomes (finished curves, last values of departed trials) the rule reads. */
  readonly outcomeMetrics?: readonly string[];
  /** The findings that hold at this step; empty when healthy or when the inputs are missing. */
  check(ctx: RuleContext): Finding[];
}

/** The finite values of one layer field, with the layer names, in input-to-output order. */
export interface LayerColumn {
  values: number[];
  names: string[];
}

export type LayerField = Exclude<keyof LayerIndicators, "name">;

/** One entry per layer field: the compiler refuses this object when a field of LayerIndicators is missing. */
const LAYER_FIELD_SET: Readonly<Record<LayerField, true>> = {
  grad_abs_mean: true,
  grad_abs_max: true,
  grad_zero_frac: true,
  weight_abs_mean: true,
  update_ratio: true,
  act_zero_frac: true,
  act_saturated_frac: true,
  bias_grad_zero_frac: true,
};

/** Every per-layer indicator of payload v1 (docs/payload.md), in this order. */
export const LAYER_FIELDS: readonly LayerField[] = Object.keys(LAYER_FIELD_SET) as LayerField[];

export function layerName(layer: LayerIndicators, index: number): string {
  return layer.name ?? `layer[${index}]`;
}

/**
 * Collects a field over the payload's layers, skipping layers that do not carry
 * it (or carry a non-finite value, which is the NF rule's business).
 * `skipFirst` / `skipLast` drop the input-side / output-side layer before collecting.
 */
export function layerColumn(
  payload: PayloadV1,
  field: LayerField,
  opts: { skipFirst?: boolean; skipLast?: boolean } = {},
): LayerColumn {
  const layers = payload.layers ?? [];
  const from = opts.skipFirst ? 1 : 0;
  const to = opts.skipLast ? layers.length - 1 : layers.length;
  const values: number[] = [];
  const names: string[] = [];
  for (let i = from; i < to; i++) {
    const layer = layers[i] as LayerIndicators;
    const v = finite(layer[field]);
    if (v !== undefined) {
      values.push(v);
      names.push(layerName(layer, i));
    }
  }
  return { values, names };
}

/** The first step at or after a fraction of the run: floor(frac * maxSteps), as the reference's `max_epoch // 2`. */
export function stepAt(frac: number, maxSteps: number): number {
  return Math.floor(frac * maxSteps);
}

/**
 * Whether a step lies in a stage window. A window covering the whole run applies
 * even when max_steps is unknown; any other window needs max_steps.
 */
export function inStage(window: { start: number; end: number }, step: number, maxSteps: number | undefined): boolean {
  if (window.start <= 0 && window.end >= 1) return true;
  if (maxSteps === undefined) return false;
  if (step < stepAt(window.start, maxSteps)) return false;
  return window.end >= 1 || step < stepAt(window.end, maxSteps);
}

/**
 * `layerColumn` without the output layer: when `excludeOutput` is set, the payload's
 * last layer carries the field and at least one other layer does too, the last value is dropped.
 */
export function hiddenLayerColumn(payload: PayloadV1, field: LayerField, excludeOutput: boolean): LayerColumn {
  const column = layerColumn(payload, field);
  const layers = payload.layers ?? [];
  const last = layers[layers.length - 1];
  if (excludeOutput && column.values.length >= 2 && last !== undefined && finite(last[field]) !== undefined) {
    column.values.pop();
    column.names.pop();
  }
  return column;
}

/**
 * Whether a rule's indicator may be read as a symptom at this step (docs/symptoms.md#progress-guard):
 * `blocked` while the trial's loss fell by progress_min or more (relative) over the last
 * progress_window steps, or while it has not yet been reported for progress_window + 1 steps;
 * `open` when it fell less (or rose). A study whose payloads never carry the metric has no guard
 * (`open`, with `fall` undefined): the indicator alone decides, as without the guard; so does
 * progress_window 0 (the guard off).
 */
export function progressGuard(ctx: RuleContext, o: ProgressGuardOptions): { open: boolean; fall?: number } {
  if (o.progress_window === 0) return { open: true };
  const values = ctx.series(o.progress_metric).values;
  if (values.length === 0) return { open: true };
  const fall = relativeFall(values, o.progress_window);
  if (fall === undefined) return { open: false };
  return { open: fall < o.progress_min, fall };
}

/** A relative fall (relativeFall) in words: "fell 0.3 %", or "rose 0.2 %" when it is negative. */
export function describeFall(fall: number): string {
  return `${fall < 0 ? "rose" : "fell"} ${fmt(100 * Math.abs(fall))} %`;
}

/** The clause a message adds when the progress guard was open: how little the loss fell. */
export function progressClause(o: ProgressGuardOptions, fall: number | undefined): string {
  if (fall === undefined) return "";
  return ` while ${o.progress_metric} ${describeFall(fall)} over ${o.progress_window} steps (progress from ${fmt(100 * o.progress_min)} %)`;
}

/**
 * Whether validation lags training at this step: `train` lies more than `gap` (a fraction)
 * below `val` (train < (1 - gap) * val, both reported at this step). The model is learning
 * and validation has not caught up (batch norm's running statistics settling, heavy dropout),
 * so a judgement by the validation curve waits, but only before step floor(until * max_steps)
 * (without max_steps, always). False when either is missing, gap is 1, or the wait is over.
 */
export function validationLags(ctx: RuleContext, train: string, val: string, gap: number, until: number): boolean {
  if (!(gap < 1)) return false;
  if (ctx.maxSteps !== undefined && ctx.step >= stepAt(until, ctx.maxSteps)) return false;
  const t = ctx.series(train);
  const v = ctx.series(val);
  if (t.steps.at(-1) !== ctx.step || v.steps.at(-1) !== ctx.step) return false;
  return (t.values.at(-1) as number) < (1 - gap) * (v.values.at(-1) as number);
}
