/**
 * What a recorded trial turned out to be when nobody stopped it, judged only by its
 * validation accuracy (never the held-out test accuracy), as the HPO simulator
 * (test/bench/hpo) judges it:
 * - final accuracy: the last epoch's `val_acc`; a non-finite or missing one counts as 0;
 * - hopeless: the training went non-finite or failed, or the final accuracy is <= 0.2;
 * - top quartile: final accuracy >= the 75th percentile of the trials it is compared with
 *   (sorted finals[floor(0.75 * (n - 1))], the simulator's definition).
 */
import type { PayloadV1 } from "../diagnosis/types.js";

/** A final validation accuracy at or below this is chance level (10 classes): nothing learned. */
export const HOPELESS_ACC = 0.2;

/** A recorded trial as calibration sees it: its epochs' payloads and how its recording ended. */
export interface CalibrationTrial {
  /** The recording's trial index; it decides the split (even: calibration, odd: evaluation). */
  index: number;
  payloads: PayloadV1[];
  status: "ok" | "non_finite" | "error";
}

export interface TrialOutcome {
  finalValAcc: number;
  hopeless: boolean;
  topQuartile: boolean;
}

export function finalValAcc(trial: CalibrationTrial): number {
  const last = trial.payloads[trial.payloads.length - 1];
  const v = last?.metrics?.val_acc;
  return typeof v === "number" && Number.isFinite(v) ? v : 0;
}

export function isHopeless(trial: CalibrationTrial): boolean {
  return trial.status !== "ok" || finalValAcc(trial) <= HOPELESS_ACC;
}

/** The outcome of every trial, top quartile taken within `trials` (one split). */
export function outcomes(trials: readonly CalibrationTrial[]): TrialOutcome[] {
  const finals = trials.map(finalValAcc);
  const sorted = [...finals].sort((a, b) => a - b);
  const q75 = sorted.length === 0 ? Infinity : (sorted[Math.floor(0.75 * (sorted.length - 1))] as number);
  return trials.map((t, i) => ({
    finalValAcc: finals[i] as number,
    hopeless: isHopeless(t),
    topQuartile: (finals[i] as number) >= q75,
  }));
}
