/**
 * The whole calibration: split the trials, search on the calibration half from a start
 * config, and measure start and result on both halves (the evaluation half only for
 * reporting; it never enters the search).
 */
import type { StudyConfig } from "../diagnosis/types.js";
import type { CalibrationTrial } from "./outcome.js";
import { formatReport } from "./report.js";
import { search, type FamilyDecision } from "./search.js";
import { splitTrials } from "./split.js";
import { prepare, simulateStudy, type StudyFigures } from "./study.js";

export interface CalibrationResult {
  config: StudyConfig;
  calibration: { trials: number; before: StudyFigures; after: StudyFigures };
  evaluation: { trials: number; before: StudyFigures; after: StudyFigures };
  decisions: FamilyDecision[];
  simulations: number;
  /** The table for standard error. */
  report: string;
}

export function calibrate(trials: readonly CalibrationTrial[], start: StudyConfig, options: { budget: number; passes?: number }): CalibrationResult {
  const split = splitTrials(trials);
  const cal = prepare(split.calibration);
  const result = search(start, cal, { budget: options.budget, passes: options.passes ?? 2 });
  const ev = prepare(split.evaluation);
  const calibration = { trials: cal.trials.length, before: simulateStudy(start, cal), after: simulateStudy(result.config, cal) };
  const evaluation = { trials: ev.trials.length, before: simulateStudy(start, ev), after: simulateStudy(result.config, ev) };
  const report = formatReport({ budget: options.budget, calibration, evaluation, decisions: result.decisions });
  return { config: result.config, calibration, evaluation, decisions: result.decisions, simulations: result.simulations, report };
}
