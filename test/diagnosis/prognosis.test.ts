/** PROG (src/diagnosis/prognosis.ts): the forecast from the nearest finished curves, the carried-forward cut, silence before enough trials finished. */
import { describe, expect, it } from "vitest";
import { DiagnosisEngine } from "../../src/diagnosis/engine.js";
import type { PayloadV1 } from "../../src/diagnosis/types.js";
import { resolveConfig } from "../../src/schema/validate.js";
import { family, onlyRules, tags } from "../helpers.js";

const STEPS = 10;

/** An engine with PROG alone, judging from step 2 once 4 trials finished and 6 left. */
function progEngine(prog: Record<string, unknown> = {}, extra: Record<string, unknown> = {}): DiagnosisEngine {
  return new DiagnosisEngine(
    onlyRules(["PROG"], { max_steps: STEPS, protection: { enabled: false }, rules: { PROG: { min_step: 2, min_finished: 4, min_outcomes: 6, neighbors: 2, persistence: 1, margin: 0, trend: false, ...prog } }, ...extra }),
  );
}

/** A curve rising linearly from `start` to `end` over STEPS steps. */
function rising(start: number, end: number): number[] {
  return Array.from({ length: STEPS }, (_, s) => start + ((end - start) * s) / (STEPS - 1));
}

type Metric = "val_acc" | "val_loss";

/** Runs a trial to the end (complete) with the given curve. */
function finish(engine: DiagnosisEngine, trial: string, values: number[], metric: Metric = "val_acc"): void {
  values.forEach((v, step) => engine.report(trial, { step, metrics: { [metric]: v } }));
  engine.end(trial, "complete");
}

const at = (step: number, v: number, metric: Metric = "val_acc"): PayloadV1 => ({ step, metrics: { [metric]: v } });

/** Two winners (ending at 0.9 and 0.95) and four mediocre trials (ending at 0.5) finish: cut P75 = 0.8, IQR = 0.3. */
function finishWinnersAndMediocre(engine: DiagnosisEngine): void {
  finish(engine, "w1", rising(0.3, 0.9));
  finish(engine, "w2", rising(0.35, 0.95));
  for (const t of ["m1", "m2", "m3", "m4"]) finish(engine, t, rising(0.1, 0.5));
}

/** The study's metric in a direction, and the curves in it: accuracies as given to maximize, 1 - accuracy to minimize. */
function directed(direction: "maximize" | "minimize"): { metric: Metric; flip: (xs: number[]) => number[] } {
  return direction === "maximize" ? { metric: "val_acc", flip: (xs) => xs } : { metric: "val_loss", flip: (xs) => xs.map((x) => 1 - x) };
}

/** Finishes one trial per [name, start, end] with a rising curve from start to end, in the direction's terms. */
function finishRising(engine: DiagnosisEngine, direction: "maximize" | "minimize", trials: [string, number, number][]): void {
  const { metric, flip } = directed(direction);
  for (const [name, start, end] of trials) finish(engine, name, flip(rising(start, end)), metric);
}

describe("PROG rule formula", () => {
  it("ships the documented defaults (resolveConfig({}))", () => {
    const o = resolveConfig({}).rules.PROG;
    expect([o.enabled, o.trend, o.metric, o.direction, o.neighbors, o.window, o.top_share, o.min_finished, o.min_outcomes, o.margin, o.reach, o.min_step, o.persistence, o.protectable]).toEqual([
      true,
      true,
      "objective",
      "auto",
      5,
      3,
      0.25,
      5,
      10,
      0.1,
      0,
      5,
      2,
      true,
    ]);
    expect([o.train_metric, o.val_metric, o.val_gap, o.val_lag_until]).toEqual(["train_loss", "val_loss", 0.5, 0.4]);
  });

  it.each(["maximize", "minimize"] as const)("stops a trial whose nearest finished curves all end below the top quartile, not one that follows a winner (%s)", (direction) => {
    const engine = progEngine();
    const { metric, flip } = directed(direction);
    // finished: two winners (end 0.9, 0.95) and four mediocre ones (end 0.5-0.6); the cut is their top quartile
    finishRising(engine, direction, [
      ["w1", 0.3, 0.9],
      ["w2", 0.35, 0.95],
      ["m1", 0.1, 0.5],
      ["m2", 0.12, 0.55],
      ["m3", 0.11, 0.6],
      ["m4", 0.1, 0.52],
    ]);
    const slow = flip(rising(0.1, 0.5));
    expect(tags(engine.report("slow", at(0, slow[0]!, metric)))).toEqual([]);
    expect(tags(engine.report("slow", at(1, slow[1]!, metric)))).toEqual([]); // min_step 2
    const stop = engine.report("slow", at(2, slow[2]!, metric));
    expect(tags(stop)).toEqual(["PROG:cannot_reach_top:stop"]);
    const symptom = family(stop, "PROG")[0]!;
    expect(symptom.evidence.indicator).toBe(`optimistic forecast of the final ${metric}${metric === "val_loss" ? " (objective fallback: no val_acc in the payload)" : ""}`);
    expect(symptom.message).toMatch(/forecast .* from the 2 finished trials with the nearest curves; even .* misses the top 25 % \(at (least|most) .*, over 6 trials that left the study\)/);
    const winner = flip(rising(0.32, 0.92));
    for (let s = 0; s < 5; s++) expect(tags(engine.report("follows-w1", at(s, winner[s]!, metric)))).toEqual([]);
  });

  it("waits while validation lags training (train loss below half the val loss), until floor(val_lag_until x max_steps)", () => {
    /** The step at which the lagging trial is stopped, or -1. */
    const stoppedAt = (prog: Record<string, unknown>, trainLoss = 0.4): number => {
      const engine = progEngine(prog);
      finishWinnersAndMediocre(engine);
      // val accuracy like the mediocre ones', while the train loss is far below the val loss (0.4 < 0.5 x 2.3)
      const slow = rising(0.1, 0.5);
      for (let s = 0; s < STEPS; s++) {
        if (engine.report("lagging", { step: s, metrics: { val_acc: slow[s]!, train_loss: trainLoss, val_loss: 2.3 } }).stop) return s;
      }
      return -1;
    };
    expect(stoppedAt({})).toBe(4); // waits at steps 2-3; floor(0.4 x 10) = 4
    expect(stoppedAt({ val_lag_until: 0.7 })).toBe(7);
    expect(stoppedAt({ val_gap: 1 })).toBe(2); // no wait
    expect(stoppedAt({}, 1.2)).toBe(2); // 1.2 is not below 0.5 x 2.3: validation does not lag
  });

  it("spares a trial that misses the cut by less than margin x the outcomes' interquartile range", () => {
    const run = (margin: number): string[] => {
      const engine = progEngine({ margin });
      finishWinnersAndMediocre(engine);
      // outcomes 0.5 x4, 0.9, 0.95: cut P75 = 0.8, IQR = 0.3; the slow trial's optimistic forecast is 0.5
      const slow = rising(0.1, 0.5);
      return [0, 1, 2].flatMap((s) => tags(engine.report("slow", at(s, slow[s]!))));
    };
    expect(run(0.9)).toEqual(["PROG:cannot_reach_top:stop"]); // 0.5 < 0.8 - 0.27
    expect(run(1.1)).toEqual([]); // 0.5 > 0.8 - 0.33
  });

  it.each(["maximize", "minimize"] as const)("with reach, carries the optimistic forecast past the best neighbour by reach x the interval's width (%s)", (direction) => {
    const { metric, flip } = directed(direction);
    const run = (reach: number): string[] => {
      const engine = progEngine({ reach });
      finishRising(engine, direction, [
        ["w1", 0.3, 0.9],
        ["w2", 0.35, 0.95],
        ["m1", 0.1, 0.5],
        ["m2", 0.1, 0.7],
        ["m3", 0.05, 0.45],
        ["m4", 0.05, 0.45],
      ]);
      // nearest two: m1 (forecast 0.5) and m2 (0.7 - 0.044 = 0.656): width 0.156; the cut is 0.85 (0.15 for the loss)
      const slow = flip(rising(0.1, 0.5));
      return [0, 1, 2].flatMap((s) => tags(engine.report("slow", at(s, slow[s]!, metric))));
    };
    expect(run(0)).toEqual(["PROG:cannot_reach_top:stop"]);
    expect(run(1)).toEqual(["PROG:cannot_reach_top:stop"]); // 0.656 + 0.156 = 0.81 misses 0.85
    expect(run(2)).toEqual([]); // 0.656 + 0.311 = 0.97 reaches it
  });

  it("with trend, spares a trial whose own curve, carried on to its last step, would reach the cut", () => {
    const run = (trend: boolean): string[] => {
      const engine = progEngine({ trend });
      finishWinnersAndMediocre(engine);
      // like the mediocre ones for 3 steps, but climbing 0.1 a step: 0.3 + 0.1 x 7 = 1.0 by step 9
      const bloomer = [0.1, 0.2, 0.3];
      return bloomer.flatMap((v, s) => tags(engine.report("bloomer", at(s, v))));
    };
    expect(run(false)).toEqual(["PROG:cannot_reach_top:stop"]);
    expect(run(true)).toEqual([]);
  });

  it("carries a positive loss's trend on the log scale: a steep fall is a factor per step, not a line below zero", () => {
    const run = (curve: number[]): string[] => {
      const engine = progEngine({ trend: true });
      // a loss-only study: val_loss ends at 0.25 and 0.3 (winners) and at 1.0 (x4): cut P25 = 0.475
      finish(engine, "w1", rising(2, 0.3), "val_loss");
      finish(engine, "w2", rising(2, 0.25), "val_loss");
      for (const t of ["m1", "m2", "m3", "m4"]) finish(engine, t, rising(2.3, 1.0), "val_loss");
      return curve.flatMap((v, s) => tags(engine.report("t", at(s, v, "val_loss"))));
    };
    // halving from 600: a straight line through 600, 300, 150 would end below zero; halving on, it ends at 1.17
    expect(run([600, 300, 150])).toEqual(["PROG:cannot_reach_top:stop"]);
    // halving from 2: 0.5 at step 2, 0.004 at step 9 on the log scale: spared
    expect(run([2, 1, 0.5])).toEqual([]);
  });

  it("says nothing while fewer than min_finished trials have finished, or fewer than min_outcomes have left", () => {
    const engine = progEngine();
    finish(engine, "w1", rising(0.3, 0.9));
    finish(engine, "m1", rising(0.1, 0.5));
    finish(engine, "m2", rising(0.1, 0.5));
    const slow = rising(0.1, 0.5);
    for (let s = 0; s < 5; s++) expect(tags(engine.report("early", at(s, slow[s]!)))).toEqual([]);
    finish(engine, "m3", rising(0.1, 0.5)); // 4 finished, 5 left: still short of min_outcomes 6
    for (let s = 0; s < 5; s++) expect(tags(engine.report("still", at(s, slow[s]!)))).toEqual([]);
  });

  it("counts stopped and pruned trials at their last value in the cut, so it does not rise as weak trials leave", () => {
    // four finished: one winner (0.9) and three at 0.6; the cut over them alone is 0.675, which a trial heading for
    // 0.62 misses. Eight pruned trials at 0.2 carried forward lower the cut to 0.6: it is reachable.
    const engine = progEngine({ neighbors: 3 });
    finish(engine, "w", rising(0.3, 0.9));
    for (const t of ["a", "b", "c"]) finish(engine, t, rising(0.1, 0.6));
    for (let i = 0; i < 8; i++) {
      engine.report(`p${i}`, at(0, 0.1));
      engine.report(`p${i}`, at(1, 0.2));
      engine.end(`p${i}`, "pruned");
    }
    const ok = rising(0.12, 0.62);
    for (let s = 0; s < 5; s++) expect(tags(engine.report("fair", at(s, ok[s]!)))).toEqual([]);
  });

  it("needs persistence and respects protection like the soft rules", () => {
    const engine = progEngine({ persistence: 2 });
    finish(engine, "w1", rising(0.3, 0.9));
    finish(engine, "w2", rising(0.35, 0.95));
    for (const t of ["m1", "m2", "m3", "m4"]) finish(engine, t, rising(0.1, 0.5));
    const slow = rising(0.1, 0.5);
    engine.report("slow", at(0, slow[0]!));
    engine.report("slow", at(1, slow[1]!));
    expect(tags(engine.report("slow", at(2, slow[2]!)))).toEqual(["PROG:cannot_reach_top:watch"]);
    expect(tags(engine.report("slow", at(3, slow[3]!)))).toEqual(["PROG:cannot_reach_top:stop"]);
  });

  it("stays silent when disabled, and when the trial reports no objective", () => {
    const off = new DiagnosisEngine(onlyRules([], { max_steps: STEPS, protection: { enabled: false }, rules: { PROG: { min_step: 2, min_finished: 4, min_outcomes: 6, neighbors: 2, persistence: 1 } } }));
    for (const t of ["w1", "w2", "m1", "m2", "m3", "m4"]) finish(off, t, t.startsWith("w") ? rising(0.3, 0.9) : rising(0.1, 0.5));
    const slow = rising(0.1, 0.5);
    for (let s = 0; s < 5; s++) expect(tags(off.report("slow", at(s, slow[s]!)))).toEqual([]);
    const on = progEngine();
    for (const t of ["w1", "w2", "m1", "m2", "m3", "m4"]) finish(on, t, t.startsWith("w") ? rising(0.3, 0.9) : rising(0.1, 0.5));
    for (let s = 0; s < 5; s++) expect(tags(on.report("mute", { step: s, metrics: { other: 1 } }))).toEqual([]);
  });
});
