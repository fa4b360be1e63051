/**
 * The calibration/evaluation split: deterministic by the recorded trial index, even
 * indices calibrate, odd ones evaluate. No seed: the recorder samples every trial's
 * configuration independently, so parity is as good as a random split and it cannot
 * change between runs or when more traces arrive (a trial never changes sides).
 * Only the calibration half may influence a choice; the evaluation half is for reporting.
 */
import type { CalibrationTrial } from "./outcome.js";

export interface Split {
  calibration: CalibrationTrial[];
  evaluation: CalibrationTrial[];
}

export function splitTrials(trials: readonly CalibrationTrial[]): Split {
  const sorted = [...trials].sort((a, b) => a.index - b.index);
  return {
    calibration: sorted.filter((t) => t.index % 2 === 0),
    evaluation: sorted.filter((t) => t.index % 2 !== 0),
  };
}
