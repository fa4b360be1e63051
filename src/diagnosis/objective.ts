/**
 * The study's objective: which metric of a payload says how good a trial is, and in which
 * direction. LAG, the prognosis and (when its own metric is missing) cohort protection
 * compare trials by it. docs/configuration.md#objective.
 *
 * Resolution, per payload: the first of these candidates whose value in the payload's
 * metrics is finite:
 *   1. the declared `objective.metric`, in `objective.direction` (when not "auto");
 *   2. val_acc, maximized;
 *   3. val_loss, minimized;
 *   4. train_loss, minimized.
 * A study that declares only a direction (metric "auto", as the hosts do from an Optuna
 * study's direction or NNI's optimize_mode) tries the built-in metrics of that direction
 * first (minimize: val_loss, train_loss, then val_acc; maximize: val_acc, then the losses).
 * So a study that reports accuracy is judged by it, and a loss-only study (no accuracy in
 * its payloads, e.g. a regression or a language model) by its validation loss, else its
 * training loss, with no configuration. A value taken from a later candidate than the first
 * is a fallback, and the evidence of every finding built on it says so.
 *
 * Direction "auto" for a declared metric is read from its name (loss, error, mse, mae, nll,
 * perplexity: minimize; acc, auc, f1, precision, recall, r2, score, iou, bleu: maximize);
 * the configuration is refused when the name says neither (src/schema/validate.ts).
 */
import { finite } from "./stats.js";
import type { Direction, ObjectiveConfig, PayloadV1 } from "./types.js";

/** The LAG metric (and the value of other metric options) that stands for the study's objective. */
export const OBJECTIVE = "objective";

/** The metric "auto" of `objective.metric`: the built-in candidates only. */
export const AUTO = "auto";

export interface ObjectiveCandidate {
  metric: string;
  direction: Direction;
}

/** A payload's value of the objective, with the metric it was read from. */
export interface ObjectiveValue extends ObjectiveCandidate {
  value: number;
  /** Set when the value is not the first candidate's: why (e.g. "no val_acc in the payload"). */
  fallback?: string;
}

const BUILT_IN: readonly ObjectiveCandidate[] = [
  { metric: "val_acc", direction: "maximize" },
  { metric: "val_loss", direction: "minimize" },
  { metric: "train_loss", direction: "minimize" },
];

const MINIMIZED = /loss|error|err$|mse|mae|nll|perplexity|ppl/i;
const MAXIMIZED = /acc|auc|f1|precision|recall|r2|score|iou|bleu/i;

/** The direction a metric's name implies, or undefined when it implies none. */
export function inferDirection(metric: string): Direction | undefined {
  if (MINIMIZED.test(metric)) return "minimize";
  if (MAXIMIZED.test(metric)) return "maximize";
  return undefined;
}

/** The candidates, in order, for a study's objective config. */
export function objectiveCandidates(objective: ObjectiveConfig): ObjectiveCandidate[] {
  if (objective.metric === AUTO) {
    if (objective.direction === "auto") return [...BUILT_IN];
    return [...BUILT_IN.filter((c) => c.direction === objective.direction), ...BUILT_IN.filter((c) => c.direction !== objective.direction)];
  }
  const direction = objective.direction === "auto" ? inferDirection(objective.metric) : objective.direction;
  // validate.ts refuses an auto direction that the name does not give; maximize keeps this total
  const declared = { metric: objective.metric, direction: direction ?? "maximize" };
  return [declared, ...BUILT_IN.filter((c) => c.metric !== declared.metric)];
}

/**
 * What a rule with `metric` and `direction` options judges by: the objective's candidates
 * for metric "objective", else that one metric (direction "auto": the one its name implies).
 */
export function ruleCandidates(options: { metric: string; direction: Direction | "auto" }, objective: ObjectiveConfig): ObjectiveCandidate[] {
  if (options.metric === OBJECTIVE) return objectiveCandidates(objective);
  const direction = options.direction === "auto" ? (inferDirection(options.metric) ?? "maximize") : options.direction;
  return [{ metric: options.metric, direction }];
}

/** The first candidate with a finite value in the payload; undefined when none has one. */
export function objectiveValue(candidates: readonly ObjectiveCandidate[], payload: PayloadV1): ObjectiveValue | undefined {
  for (const [i, c] of candidates.entries()) {
    const value = finite(payload.metrics?.[c.metric]);
    if (value === undefined) continue;
    if (i === 0) return { ...c, value };
    const missing = candidates.slice(0, i).map((m) => m.metric);
    return { ...c, value, fallback: `no ${missing.join(" or ")} in the payload` };
  }
  return undefined;
}

/** How a finding names the metric it judged: "val_loss (objective fallback: no val_acc in the payload)". */
export function describeObjective(v: ObjectiveValue): string {
  return v.fallback === undefined ? v.metric : `${v.metric} (objective fallback: ${v.fallback})`;
}
