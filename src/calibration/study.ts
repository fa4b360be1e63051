/**
 * A simulated study: the trials of one split replayed through ONE DiagnosisEngine,
 * interleaved by step (every trial's step 0, then every trial's step 1, ...), as a live
 * study with cohort protection would see them. A trial's first stop is where it ends;
 * its later payloads are not sent. The figures:
 * - top-quartile stop rate (false kills): top-quartile trials stopped / top-quartile trials;
 * - hopeless caught: hopeless trials stopped before half their epochs / hopeless trials;
 * - epochs saved: epochs not run after the stops / all recorded epochs (also split into
 *   hopeless and other trials).
 */
import { DiagnosisEngine } from "../diagnosis/engine.js";
import type { StudyConfig } from "../diagnosis/types.js";
import { outcomes, type CalibrationTrial, type TrialOutcome } from "./outcome.js";

export interface StudyFigures {
  trials: number;
  topQuartile: number;
  topQuartileStopped: number;
  hopeless: number;
  hopelessCaught: number;
  epochs: number;
  epochsSaved: number;
  hopelessEpochsSaved: number;
  /** Epochs saved on trials that are not hopeless (what a stop costs in possibly useful training). */
  otherEpochsSaved: number;
  /** Stop step per trial (same order as the input), undefined when it ran to the end. */
  stoppedAt: (number | undefined)[];
}

/** A split prepared once for many simulations: its trials and their outcomes. */
export interface PreparedSplit {
  trials: readonly CalibrationTrial[];
  outcomes: readonly TrialOutcome[];
}

export function prepare(trials: readonly CalibrationTrial[]): PreparedSplit {
  return { trials, outcomes: outcomes(trials) };
}

export function simulateStudy(config: StudyConfig, split: PreparedSplit): StudyFigures {
  const { trials } = split;
  const engine = new DiagnosisEngine(config);
  const stoppedAt: (number | undefined)[] = trials.map(() => undefined);
  const ids = trials.map((t) => `t${t.index}`);
  const longest = trials.reduce((m, t) => Math.max(m, t.payloads.length), 0);
  for (let k = 0; k < longest; k++) {
    for (let i = 0; i < trials.length; i++) {
      if (stoppedAt[i] !== undefined) continue;
      const payload = (trials[i] as CalibrationTrial).payloads[k];
      if (payload === undefined) continue;
      if (engine.report(ids[i] as string, payload).stop) stoppedAt[i] = k;
    }
  }
  return figures(split, stoppedAt);
}

/** Figures with every count at 0. */
function noFigures(trials: number, stoppedAt: (number | undefined)[]): StudyFigures {
  return { trials, topQuartile: 0, topQuartileStopped: 0, hopeless: 0, hopelessCaught: 0, epochs: 0, epochsSaved: 0, hopelessEpochsSaved: 0, otherEpochsSaved: 0, stoppedAt };
}

function figures(split: PreparedSplit, stoppedAt: (number | undefined)[]): StudyFigures {
  const f = noFigures(split.trials.length, stoppedAt);
  split.trials.forEach((t, i) => {
    const o = split.outcomes[i] as TrialOutcome;
    const n = t.payloads.length;
    const stop = stoppedAt[i];
    const saved = stop === undefined ? 0 : n - (stop + 1);
    f.epochs += n;
    f.epochsSaved += saved;
    if (o.hopeless) f.hopelessEpochsSaved += saved;
    else f.otherEpochsSaved += saved;
    if (o.topQuartile) {
      f.topQuartile++;
      if (stop !== undefined) f.topQuartileStopped++;
    }
    if (o.hopeless) {
      f.hopeless++;
      if (stop !== undefined && stop < Math.floor(n / 2)) f.hopelessCaught++;
    }
  });
  return f;
}

/** Figures summed over several tasks (each simulated as its own study); `stoppedAt` joined in task order. */
export function sumFigures(all: readonly StudyFigures[]): StudyFigures {
  const total = noFigures(0, []);
  for (const f of all) {
    for (const key of ["trials", "topQuartile", "topQuartileStopped", "hopeless", "hopelessCaught", "epochs", "epochsSaved", "hopelessEpochsSaved", "otherEpochsSaved"] as const) {
      total[key] += f[key];
    }
    total.stoppedAt.push(...f.stoppedAt);
  }
  return total;
}

/** Share of top-quartile trials stopped; 0 when there are none. */
export function falseKillRate(f: StudyFigures): number {
  return f.topQuartile === 0 ? 0 : f.topQuartileStopped / f.topQuartile;
}
