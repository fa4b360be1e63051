/**
 * Coordinate descent over the rule families. Per pass, per family (TUNED_FAMILIES order),
 * every candidate of familyCandidates() is simulated on the calibration split with the
 * other families as chosen so far; among those whose top-quartile stop rate is within the
 * budget, the one that saves the most epochs on hopeless trials wins. Ties go to the
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
import { falseKillRate, simulateStudy, type PreparedSplit, type StudyFigures } from "./study.js";

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
  figures: StudyFigures;
  current: boolean;
}

/** Whether a is better than b under the budget (see the header). */
function better(a: Scored, b: Scored, budget: number): boolean {
  const aOk = falseKillRate(a.figures) <= budget;
  const bOk = falseKillRate(b.figures) <= budget;
  if (aOk !== bOk) return aOk;
  if (!aOk && falseKillRate(a.figures) !== falseKillRate(b.figures)) return falseKillRate(a.figures) < falseKillRate(b.figures);
  if (a.figures.hopelessEpochsSaved !== b.figures.hopelessEpochsSaved) return a.figures.hopelessEpochsSaved > b.figures.hopelessEpochsSaved;
  if (a.figures.otherEpochsSaved !== b.figures.otherEpochsSaved) return a.figures.otherEpochsSaved < b.figures.otherEpochsSaved;
  if (a.figures.topQuartileStopped !== b.figures.topQuartileStopped) return a.figures.topQuartileStopped < b.figures.topQuartileStopped;
  return a.current && !b.current;
}

export function search(start: StudyConfig, calibration: PreparedSplit, options: SearchOptions): SearchResult {
  let config = start;
  let simulations = 0;
  const decisions: FamilyDecision[] = [];
  let currentFigures = simulateStudy(config, calibration);
  simulations++;
  for (let pass = 1; pass <= options.passes; pass++) {
    for (const family of TUNED_FAMILIES) {
      let best: Scored = { config, figures: currentFigures, current: true };
      let withinBudget = falseKillRate(currentFigures) <= options.budget ? 1 : 0;
      const candidates = familyCandidates(family);
      for (const patch of candidates) {
        // disabling keeps the family's other options as they started, so the written config says only "enabled: false"
        const rules = patchRules(config.rules, family, patch.enabled === false ? { ...start.rules[family], enabled: false } : patch);
        if (isDeepStrictEqual(rules[family], config.rules[family])) continue; // the current setting, already scored
        const candidate: StudyConfig = { ...config, rules };
        const figures = simulateStudy(candidate, calibration);
        simulations++;
        if (falseKillRate(figures) <= options.budget) withinBudget++;
        const scored: Scored = { config: candidate, figures, current: false };
        if (better(scored, best, options.budget)) best = scored;
      }
      decisions.push({
        pass,
        family,
        change: describePatch(config.rules[family], best.config.rules[family]),
        before: currentFigures,
        after: best.figures,
        candidates: candidates.length,
        withinBudget,
      });
      config = best.config;
      currentFigures = best.figures;
    }
  }
  return { config, decisions, simulations };
}
