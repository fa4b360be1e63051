/**
 * The whole calibration: split the trials, search on the calibration half from a start
 * config, and measure start and result on both halves (the evaluation half only for
 * reporting; it never enters the search).
 */
import type { StudyConfig } from "../diagnosis/types.js";
import type { CalibrationTrial } from "./outcome.js";
import { configDiff } from "./config-diff.js";
import { formatCrossTaskReport, formatReport } from "./report.js";
import { search, type FamilyDecision } from "./search.js";
import { splitTrials } from "./split.js";
import { falseKillRate, prepare, simulateStudy, type StudyFigures } from "./study.js";

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

/** The trials of one task (one model family on one data set, one objective). */
export interface CalibrationTask {
  name: string;
  trials: readonly CalibrationTrial[];
}

/** One fold of leave-one-task-out: chosen on every other task, judged on the one left out. */
export interface LeftOutFold {
  task: string;
  config: StudyConfig;
  /** The start config and the chosen one on the task left out (all its trials). */
  before: StudyFigures;
  after: StudyFigures;
  /** Whether the chosen config keeps the left-out task's top-quartile stop rate within the budget. */
  passes: boolean;
}

export interface CrossTaskResult {
  /** Chosen on every task together: the candidate for the shipped defaults. */
  config: StudyConfig;
  folds: LeftOutFold[];
  /** The final config on each task. */
  perTask: { task: string; before: StudyFigures; after: StudyFigures }[];
  simulations: number;
  report: string;
}

/**
 * Calibration across tasks, judged on tasks it never saw: for every task, the search runs
 * on all the trials of the other tasks (each task its own study, the budget holding on
 * each) and the chosen config is measured on the task left out; then the search runs on
 * every task together, giving the config to ship. Shipped defaults should pass on every
 * left-out task: the report says whether each fold did.
 */
export function calibrateAcrossTasks(tasks: readonly CalibrationTask[], start: StudyConfig, options: { budget: number; passes?: number }): CrossTaskResult {
  if (tasks.length < 2) throw new RangeError(`leave-one-task-out needs at least 2 tasks, got ${tasks.length}`);
  const prepared = tasks.map((t) => ({ name: t.name, split: prepare(t.trials) }));
  const passes = options.passes ?? 2;
  let simulations = 0;
  const folds: LeftOutFold[] = prepared.map((left) => {
    const others = prepared.filter((t) => t !== left).map((t) => t.split);
    const result = search(start, others, { budget: options.budget, passes });
    simulations += result.simulations;
    const after = simulateStudy(result.config, left.split);
    return { task: left.name, config: result.config, before: simulateStudy(start, left.split), after, passes: falseKillRate(after) <= options.budget };
  });
  const all = search(start, prepared.map((t) => t.split), { budget: options.budget, passes });
  simulations += all.simulations;
  const perTask = prepared.map((t) => ({ task: t.name, before: simulateStudy(start, t.split), after: simulateStudy(all.config, t.split) }));
  const report = formatCrossTaskReport({ budget: options.budget, folds, perTask, configDiffOf: (c) => JSON.stringify(configDiff(c, start)) });
  return { config: all.config, folds, perTask, simulations, report };
}
