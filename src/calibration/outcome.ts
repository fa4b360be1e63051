/**
 * What a recorded trial turned out to be when nobody stopped it: the one definition, shared with
 * the HPO simulator (test/bench/hpo/traces.py) and written down in docs/benchmarks.md, "Outcomes";
 * test/fixtures/outcomes/ holds golden traces that both test suites check. Judged only by the
 * task's validation objective (never a held-out test score):
 * - the trials: the first line of each trial index (a later line of the same index is dropped);
 * - final objective: the last epoch's value of the task's metric (val_acc, val_loss, ...);
 *   its *score* is that value, negated when the task minimizes, so higher is always better;
 *   a non-finite or missing value scores worst (-Infinity), and so does a trial whose training
 *   threw (status "error": it ended without a result);
 * - hopeless: the training went non-finite or threw, or the final score is -Infinity, or the
 *   final objective is no better than the task's `hopeless_at` (chance accuracy, the constant
 *   predictor's loss);
 * - top quartile: final score >= the 75th percentile of the trials it is compared with
 *   (sorted scores[floor(0.75 * (n - 1))]).
 */
import type { PayloadV1 } from "../diagnosis/types.js";
import { DEFAULT_TASK_GOAL, taskGoalOf, type TaskGoal, type TraceTrial } from "../replay/trace-format.js";

/** A final validation accuracy at or below this is chance level (10 classes): nothing learned. */
export const HOPELESS_ACC = DEFAULT_TASK_GOAL.hopeless_at;

/** A recorded trial as calibration sees it: its epochs' payloads, how its recording ended, and its task's goal. */
export interface CalibrationTrial {
  /** The recording's trial index; it decides the split (even: calibration, odd: evaluation). */
  index: number;
  payloads: PayloadV1[];
  status: "ok" | "non_finite" | "error";
  /** What its task optimizes; the first recordings' goal (val_acc, maximized, hopeless at 0.2) when absent. */
  goal?: TaskGoal;
}

export interface TrialOutcome {
  /** The final objective as a score: higher is better, -Infinity for a non-finite end. */
  finalScore: number;
  hopeless: boolean;
  topQuartile: boolean;
}

function score(value: number, goal: TaskGoal): number {
  return goal.direction === "maximize" ? value : -value;
}

/** A trace line as calibration sees it (its task's goal read from the line; throws on a malformed task block). */
export function calibrationTrial<C extends object, M extends string>(t: TraceTrial<C, M>): CalibrationTrial {
  return { index: t.trial, payloads: t.epochs.map((e) => e.payload), status: t.status, goal: taskGoalOf(t) };
}

/** Adds a trial to a task's trials by index unless its index is there already: the first line of an index wins (see the header). */
export function addFirstLine(byIndex: Map<number, CalibrationTrial>, trial: CalibrationTrial): void {
  if (!byIndex.has(trial.index)) byIndex.set(trial.index, trial);
}

/** The final objective's score (see the header). */
export function finalScore(trial: CalibrationTrial): number {
  if (trial.status === "error") return -Infinity;
  const goal = trial.goal ?? DEFAULT_TASK_GOAL;
  const last = trial.payloads[trial.payloads.length - 1];
  const v = last?.metrics?.[goal.metric];
  return typeof v === "number" && Number.isFinite(v) ? score(v, goal) : -Infinity;
}

export function isHopeless(trial: CalibrationTrial): boolean {
  const goal = trial.goal ?? DEFAULT_TASK_GOAL;
  const final = finalScore(trial);
  return trial.status !== "ok" || final === -Infinity || final <= score(goal.hopeless_at, goal);
}

/** The outcome of every trial, top quartile taken within `trials` (one split or one task). */
export function outcomes(trials: readonly CalibrationTrial[]): TrialOutcome[] {
  const finals = trials.map(finalScore);
  const sorted = [...finals].sort((a, b) => a - b);
  const q75 = sorted.length === 0 ? Infinity : (sorted[Math.floor(0.75 * (sorted.length - 1))] as number);
  return trials.map((t, i) => ({
    finalScore: finals[i] as number,
    hopeless: isHopeless(t),
    topQuartile: (finals[i] as number) >= q75,
  }));
}

/** The outcome of every trial of one task's trace lines (the first line of each index), in index order. */
export function traceOutcomes(lines: Iterable<TraceTrial>): (TrialOutcome & { index: number })[] {
  const byIndex = new Map<number, CalibrationTrial>();
  for (const line of lines) addFirstLine(byIndex, calibrationTrial(line));
  const trials = [...byIndex.values()].sort((a, b) => a.index - b.index);
  return outcomes(trials).map((o, i) => ({ index: (trials[i] as CalibrationTrial).index, ...o }));
}
