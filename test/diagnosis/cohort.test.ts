import { describe, expect, it } from "vitest";
import { Cohort } from "../../src/diagnosis/cohort.js";
import type { Direction, Measured, PayloadV1, ProtectionConfig } from "../../src/diagnosis/types.js";
import { feed, fillCohort, layers10, makeConfig, makeEngine, tags } from "../helpers.js";

function cohort(overrides: Partial<ProtectionConfig> = {}): Cohort {
  return new Cohort({ ...makeConfig().protection, ...overrides });
}

function filled(values: readonly number[], overrides: Partial<ProtectionConfig> = {}, step = 0): Cohort {
  const c = cohort(overrides);
  for (const v of values) c.add(step, v);
  return c;
}

const TENS = [0, 10, 20, 30, 40, 50, 60, 70, 80, 90];

describe("Cohort", () => {
  it("has the documented defaults", () => {
    expect(makeConfig().protection).toEqual({
      enabled: true,
      metric: "train_loss",
      direction: "minimize",
      percentile: 10,
      min_cohort: 10,
    });
  });

  it("counts values per step", () => {
    const c = filled([1, 2, 3]);
    c.add(4, 1);
    expect(c.size(0)).toBe(3);
    expect(c.size(4)).toBe(1);
    expect(c.size(1)).toBe(0);
  });

  it("protects nobody while the cohort has fewer than min_cohort values", () => {
    const c = filled(TENS.slice(0, 9));
    expect(c.qualifies(0, -100)).toBe(false);
    c.add(0, 90);
    expect(c.qualifies(0, -100)).toBe(true);
  });

  it("honours min_cohort", () => {
    expect(filled([5, 6, 7], { min_cohort: 3 }).qualifies(0, 1)).toBe(true);
    expect(filled([5, 6, 7], { min_cohort: 4 }).qualifies(0, 1)).toBe(false);
  });

  it("minimize: protects values at or below the interpolated 10th percentile", () => {
    // numpy.percentile([0, 10, ..., 90], 10) == 9.0
    const c = filled([...TENS].reverse());
    expect(c.qualifies(0, 8)).toBe(true);
    expect(c.qualifies(0, 9)).toBe(true);
    expect(c.qualifies(0, 9.000001)).toBe(false);
    expect(c.qualifies(0, 10)).toBe(false);
  });

  it("maximize: protects values at or above the interpolated 90th percentile", () => {
    // numpy.percentile([0, 10, ..., 90], 90) == 81.0
    const c = filled(TENS, { direction: "maximize" });
    expect(c.qualifies(0, 100)).toBe(true);
    expect(c.qualifies(0, 81)).toBe(true);
    expect(c.qualifies(0, 80.999999)).toBe(false);
    expect(c.qualifies(0, 9)).toBe(false);
  });

  it("keeps steps apart", () => {
    const c = filled(TENS, {}, 3);
    expect(c.qualifies(3, 0)).toBe(true);
    expect(c.qualifies(2, 0)).toBe(false);
    expect(c.qualifies(4, 0)).toBe(false);
  });

  it.each([
    [0, 0, true],
    [0, 0.5, false],
    [100, 90, true],
    [100, 90.5, false],
    [50, 45, true],
    [50, 45.5, false],
  ])("percentile %s: value %s qualifies = %s", (percentile, value, expected) => {
    expect(filled(TENS, { percentile }).qualifies(0, value)).toBe(expected);
  });
});

/* ------------------------------------------------------------ in the engine */

interface DirectionCase {
  direction: Direction;
  metric: string;
  /** Ten cohort values, worst first. */
  cohort: number[];
  /** The cohort's protection boundary (numpy.percentile at 10 / 90). */
  boundary: number;
  /** A value just on the wrong side of the boundary. */
  justOutside: number;
  /** A value far on the good side / the bad side. */
  best: number;
  worst: number;
  /** A protected value, then a value worse than the whole cohort (but not a divergence of the first). */
  good: number;
  bad: number;
}

const DIRECTIONS: DirectionCase[] = [
  {
    direction: "minimize",
    metric: "train_loss",
    cohort: [100, 90, 80, 70, 60, 50, 40, 30, 20, 10],
    boundary: 19,
    justOutside: 19.5,
    best: 1,
    worst: 1000,
    good: 18,
    bad: 30,
  },
  {
    direction: "maximize",
    metric: "val_acc",
    cohort: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0].map((x) => x * 100),
    boundary: 91,
    justOutside: 90.5,
    best: 100,
    worst: 0,
    good: 95,
    bad: 5,
  },
];

/** A payload that reports the protection metric and persistent vanishing gradients (a protectable rule). */
function vg(step: number, metric: string, value: Measured): PayloadV1 {
  return { step, max_steps: 20, metrics: { [metric]: value }, layers: layers10({ grad_abs_mean: 1e-7 }) };
}

describe.each(DIRECTIONS)("protection in the engine, $direction $metric", (d) => {
  const engine = () => makeEngine({ protection: { direction: d.direction, metric: d.metric } });

  it("does not protect with a cohort of min_cohort - 1 values", () => {
    const e = engine();
    fillCohort(e, 0, d.cohort.slice(0, 9), d.metric);
    const v = e.report("x", { step: 0, metrics: { [d.metric]: d.best } });
    expect(v.protected).toBe(false);
  });

  it("protects the best value once the cohort has min_cohort values", () => {
    const e = engine();
    fillCohort(e, 0, d.cohort, d.metric);
    expect(e.report("x", { step: 0, metrics: { [d.metric]: d.best } }).protected).toBe(true);
  });

  it("protects a value exactly at the percentile, not one just outside", () => {
    const e = engine();
    fillCohort(e, 0, d.cohort, d.metric);
    expect(e.report("at", { step: 0, metrics: { [d.metric]: d.boundary } }).protected).toBe(true);
    const e2 = engine();
    fillCohort(e2, 0, d.cohort, d.metric);
    expect(e2.report("out", { step: 0, metrics: { [d.metric]: d.justOutside } }).protected).toBe(false);
  });

  it("keeps a trial protected at later steps, even with a bad value", () => {
    const e = engine();
    fillCohort(e, 0, d.cohort, d.metric);
    fillCohort(e, 1, d.cohort, d.metric);
    fillCohort(e, 2, d.cohort, d.metric);
    const verdicts = feed(e, "x", [
      vg(0, d.metric, d.good),
      vg(1, d.metric, d.bad),
      vg(2, d.metric, d.bad),
    ]);
    expect(verdicts.map((v) => v.protected)).toEqual([true, true, true]);
    expect(verdicts.map((v) => tags(v).join(","))).toEqual([
      "VG:grad_median_low:watch",
      "VG:grad_median_low:protected",
      "VG:grad_median_low:protected",
    ]);
  });

  it("does not protect a trial that was never in the best percentile", () => {
    const e = engine();
    fillCohort(e, 0, d.cohort, d.metric);
    fillCohort(e, 1, d.cohort, d.metric);
    const verdicts = feed(e, "x", [vg(0, d.metric, d.worst), vg(1, d.metric, d.worst)]);
    expect(verdicts.map((v) => v.protected)).toEqual([false, false]);
    expect(tags(verdicts[1]!)).toEqual(["VG:grad_median_low:stop"]);
  });

  it("becomes protected at the first step where it qualifies", () => {
    const e = engine();
    fillCohort(e, 2, d.cohort, d.metric);
    const verdicts = feed(e, "x", [0, 1, 2, 3].map((s) => ({ step: s, metrics: { [d.metric]: d.best } })));
    expect(verdicts.map((v) => v.protected)).toEqual([false, false, true, true]);
  });
});

describe("protection: what is in the cohort", () => {
  it("does not hold the trial's own values (its earlier steps do not fill its cohort)", () => {
    const e = makeEngine();
    // x reports steps 0..9 alone; at step 10 the cohort holds only the nine others
    feed(e, "x", Array.from({ length: 10 }, (_, s) => ({ step: s, metrics: { train_loss: 0.1 } })));
    fillCohort(e, 10, [1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(e.report("x", { step: 10, metrics: { train_loss: 0.1 } }).protected).toBe(false);
    // a tenth trial at step 10 does see ten values (x's included)
    expect(e.report("y", { step: 10, metrics: { train_loss: 0.1 } }).protected).toBe(true);
  });

  it("compares a trial with what was reported before it at that step, not after", () => {
    const e = makeEngine();
    const first = e.report("x", { step: 0, metrics: { train_loss: 0.1 } });
    fillCohort(e, 0, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(first.protected).toBe(false);
    // re-delivery answers the stored verdict: the value is not compared again with the larger cohort
    expect(e.report("x", { step: 0, metrics: { train_loss: 0.1 } }).protected).toBe(false);
    expect(e.report("x", { step: 1, metrics: { train_loss: 0.1 } }).protected).toBe(false);
  });

  it("does not count a re-delivered step twice", () => {
    const e = makeEngine();
    fillCohort(e, 0, [1, 2, 3, 4, 5, 6, 7, 8, 9]);
    e.report("cohort-s0-0", { step: 0, metrics: { train_loss: 1 } }); // re-delivery, already counted
    expect(e.report("x", { step: 0, metrics: { train_loss: 0.1 } }).protected).toBe(false);
  });

  it.each([
    ["null", null],
    ["NaN", NaN],
    ["Infinity", Infinity],
    ["-Infinity", -Infinity],
  ])("ignores %s protection values", (_label, bad) => {
    const e = makeEngine();
    fillCohort(e, 0, [1, 2, 3, 4, 5, 6, 7, 8, 9, bad]);
    expect(e.report("x", { step: 0, metrics: { train_loss: 0.1 } }).protected).toBe(false);
    e.report("tenth", { step: 0, metrics: { train_loss: 10 } });
    expect(e.report("y", { step: 0, metrics: { train_loss: 0.1 } }).protected).toBe(true);
  });

  it("never protects a trial on a non-finite value of its own", () => {
    const e = makeEngine();
    fillCohort(e, 0, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    const v = e.report("x", { step: 0, metrics: { train_loss: -Infinity } });
    expect(v.protected).toBe(false);
    expect(tags(v)).toEqual(["NF:non_finite_metric:stop"]);
  });

  it("holds values of stopped and ended trials", () => {
    const e = makeEngine();
    for (let i = 0; i < 10; i++) {
      const v = e.report(`bad${i}`, { step: 0, metrics: { train_loss: i + 1 }, layers: layers10({ grad_abs_mean: 1e5 }) });
      expect(v.stop).toBe(true);
      if (i % 2 === 0) e.end(`bad${i}`, "pruned");
    }
    expect(e.report("x", { step: 0, metrics: { train_loss: 0.5 } }).protected).toBe(true);
  });

  it("does not take payloads of a trial after its stop into the cohort", () => {
    const e = makeEngine();
    fillCohort(e, 1, [1, 2, 3, 4, 5, 6, 7, 8, 9]);
    e.report("stopped", { step: 0, metrics: { train_loss: 1 }, layers: layers10({ grad_abs_mean: 1e5 }) });
    const after = e.report("stopped", { step: 1, metrics: { train_loss: 0.5 } });
    expect(after.stop).toBe(true);
    expect(after.stopped_at).toBe(0);
    // the cohort at step 1 still holds nine values
    expect(e.report("x", { step: 1, metrics: { train_loss: 0.1 } }).protected).toBe(false);
    expect(e.report("y", { step: 1, metrics: { train_loss: 0.1 } }).protected).toBe(true);
  });

  it("ignores payloads without the protection metric", () => {
    const e = makeEngine();
    fillCohort(e, 0, [1, 2, 3, 4, 5, 6, 7, 8, 9]);
    e.report("other", { step: 0, metrics: { val_loss: 1 } });
    expect(e.report("x", { step: 0, metrics: { train_loss: 0.1 } }).protected).toBe(false);
    const noMetric = makeEngine();
    fillCohort(noMetric, 0, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(noMetric.report("x", { step: 0, layers: layers10() }).protected).toBe(false);
  });

  it("uses the configured metric, and the objective when a payload lacks it, each metric in its own cohort", () => {
    const e = makeEngine({ protection: { metric: "val_loss" } });
    fillCohort(e, 0, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], "val_loss");
    expect(e.report("x", { step: 0, metrics: { train_loss: 100, val_loss: 0.1 } }).protected).toBe(true);
    // payloads without val_loss are judged by the objective (here train_loss, the last fallback) among their own kind
    const byTrain = makeEngine({ protection: { metric: "val_loss" } });
    fillCohort(byTrain, 0, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], "train_loss");
    expect(byTrain.report("x", { step: 0, metrics: { train_loss: 0.1 } }).protected).toBe(true);
    expect(byTrain.report("y", { step: 0, metrics: { train_loss: 5 } }).protected).toBe(false);
    // a val_loss cohort of 1 value: too small, the train_loss values do not count for it
    expect(byTrain.report("z", { step: 0, metrics: { val_loss: 0.01 } }).protected).toBe(false);
  });

  it("protects nobody when disabled", () => {
    const e = makeEngine({ protection: { enabled: false } });
    fillCohort(e, 0, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    const verdicts = feed(e, "x", [vg(0, "train_loss", 0.1), vg(1, "train_loss", 0.1)]);
    expect(verdicts.map((v) => v.protected)).toEqual([false, false]);
    expect(tags(verdicts[1]!)).toEqual(["VG:grad_median_low:stop"]);
  });
});
