/**
 * Coordinate descent over the rule families. Per pass, per family (TUNED_FAMILIES order),
 * every candidate of familyCandidates() is simulated on the calibration split (or on each
 * of several tasks, each its own study) with the other families as chosen so far; among
 * those whose top-quartile stop rate is within the budget (on every task: the worst task's
 * rate counts), the one that saves the most epochs on hopeless trials (summed) wins. Ties go to the
 * candidate that saves fewer epochs of the other trials (less collateral), then to the
 * current setting (no change without a reason). When no candidate is within the budget,
 * the one with the lowest top-quartile stop rate wins (then the same order).
 *
 * The objective is epochs saved on hopeless trials, not all epochs saved: the budget only
 * guards the top quartile, and a rule that stops the mediocre middle saves many epochs
 * without a sign that those trials were broken; a diagnosis rule is there to stop broken
 * trials, and the middle may hold the winner of a different seed or a longer budget.
 *
 * Only the calibration split is ever simulated here.
 */
import { isDeepStrictEqual } from "node:util";
import type { StudyConfig } from "../diagnosis/types.js";
import { TUNED_FAMILIES, describePatch, familyCandidates, patchRules } from "./candidates.js";
import { falseKillRate, simulateStudy, sumFigures, type PreparedSplit, type StudyFigures } from "./study.js";

export interface SearchOptions {
  /** Highest allowed share of top-quartile trials stopped (0..1). */
  budget: number;
  /** Passes of coordinate descent over the families. */
  passes: number;
}

/** One family's decision in one pass. */
export interface FamilyDecision {
  pass: number;
  family: string;
  /** "key before→after" changes, "" when unchanged. */
  change: string;
  before: StudyFigures;
  after: StudyFigures;
  /** Candidates simulated, and how many were within the budget. */
  candidates: number;
  withinBudget: number;
}

export interface SearchResult {
  config: StudyConfig;
  decisions: FamilyDecision[];
  simulations: number;
}

interface Scored {
  config: StudyConfig;
  /** Summed over the tasks. */
  figures: StudyFigures;
  /** The highest top-quartile stop rate of any task. */
  rate: number;
  current: boolean;
}

/** Simulates a config on every task; the figures summed and the worst task's top-quartile stop rate. */
function scoreOn(config: StudyConfig, tasks: readonly PreparedSplit[]): { figures: StudyFigures; rate: number } {
  const each = tasks.map((t) => simulateStudy(config, t));
  return { figures: each.length === 1 ? (each[0] as StudyFigures) : sumFigures(each), rate: Math.max(0, ...each.map(falseKillRate)) };
}

/** Whether a is better than b under the budget (see the header). */
function better(a: Scored, b: Scored, budget: number): boolean {
  const aOk = a.rate <= budget;
  const bOk = b.rate <= budget;
  if (aOk !== bOk) return aOk;
  if (!aOk && a.rate !== b.rate) return a.rate < b.rate;
  if (a.figures.hopelessEpochsSaved !== b.figures.hopelessEpochsSaved) return a.figures.hopelessEpochsSaved > b.figures.hopelessEpochsSaved;
  if (a.figures.otherEpochsSaved !== b.figures.otherEpochsSaved) return a.figures.otherEpochsSaved < b.figures.otherEpochsSaved;
  if (a.figures.topQuartileStopped !== b.figures.topQuartileStopped) return a.figures.topQuartileStopped < b.figures.topQuartileStopped;
  return a.current && !b.current;
}

export function search(start: StudyConfig, calibration: PreparedSplit | readonly PreparedSplit[], options: SearchOptions): SearchResult {
  const tasks: readonly PreparedSplit[] = Array.isArray(calibration) ? calibration : [calibration as PreparedSplit];
  let config = start;
  let simulations = 0;
  const decisions: FamilyDecision[] = [];
  let current = scoreOn(config, tasks);
  simulations++;
  for (let pass = 1; pass <= options.passes; pass++) {
    for (const family of TUNED_FAMILIES) {
      let best: Scored = { config, ...current, current: true };
      let withinBudget = current.rate <= options.budget ? 1 : 0;
      const candidates = familyCandidates(family);
      for (const patch of candidates) {
        // disabling keeps the family's other options as they started, so the written config says only "enabled: false"
        const rules = patchRules(config.rules, family, patch.enabled === false ? { ...start.rules[family], enabled: false } : patch);
        if (isDeepStrictEqual(rules[family], config.rules[family])) continue; // the current setting, already scored
        const candidate: StudyConfig = { ...config, rules };
        const scoredOn = scoreOn(candidate, tasks);
        simulations++;
        if (scoredOn.rate <= options.budget) withinBudget++;
        const scored: Scored = { config: candidate, ...scoredOn, current: false };
        if (better(scored, best, options.budget)) best = scored;
      }
      decisions.push({
        pass,
        family,
        change: describePatch(config.rules[family], best.config.rules[family]),
        before: current.figures,
        after: best.figures,
        candidates: candidates.length,
        withinBudget,
      });
      config = best.config;
      current = { figures: best.figures, rate: best.rate };
    }
  }
  return { config, decisions, simulations };
}
