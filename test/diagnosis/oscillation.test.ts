import { describe, expect, it } from "vitest";
import { DiagnosisEngine } from "../../src/diagnosis/engine.js";
import { HeavyOscillationRule } from "../../src/diagnosis/oscillation.js";
import type { PayloadV1 } from "../../src/diagnosis/types.js";
import { ctxFrom, curve, curves, feed, fillCohort, onlyRules, tags } from "../helpers.js";
import { pinnedOptions, ruleOf, type RuleOverrides } from "./rule-fixture.js";

const rule = ruleOf("HO", HeavyOscillationRule);

function check(history: PayloadV1[], overrides: RuleOverrides = {}) {
  return rule(overrides).check(ctxFrom(history, 20));
}

/** A loss that swings by ±0.5 around an upward trend of 0.15 per step: every 6-window from step 5 to 13 is detected. */
const swinging = (n: number): number[] => Array.from({ length: n }, (_, t) => 1 + 0.15 * t + (t % 2 === 1 ? 0.5 : -0.5));

describe("HO rule formula", () => {
  it("has the documented defaults", () => {
    expect(pinnedOptions("HO", ["metrics", "window", "relative_slope_min", "cv_min"])).toEqual([["train_loss", "val_loss"], 6, 0.01, 0.2]);
    expect(pinnedOptions("HO", ["persistence", "protectable", "min_step", "stage"])).toEqual([2, false, 0, { start: 0.5, end: 1 }]);
  });

  it("fires on a loss that swings while trending up", () => {
    const findings = check(curve([1, 3, 1, 3, 1, 3]));
    expect(findings).toHaveLength(1);
    expect(findings[0]?.rule).toBe("oscillation");
    expect(findings[0]?.evidence).toEqual({ indicator: "cv(last 6 train_loss)", value: 0.5, threshold: 0.2 });
  });

  it("is silent on a swinging loss that trends down", () => {
    expect(check(curve([3, 1, 3, 1, 3, 1]))).toEqual([]);
  });

  it("is silent on a smooth rise (CV too small)", () => {
    expect(check(curve([1, 1.1, 1.2, 1.3, 1.4, 1.5]))).toEqual([]);
  });

  it("is silent on a healthy decreasing loss", () => {
    expect(check(curve(Array.from({ length: 12 }, (_, t) => 2.3 * Math.exp(-0.3 * t) + 0.1)))).toEqual([]);
  });

  it("does not fire at a CV of exactly 0.2 (strict >), fires just above", () => {
    // [4, 6, 4, 6, 4, 6]: mean 5, std 1, CV exactly 0.2, relative slope 0.034
    expect(check(curve([4, 6, 4, 6, 4, 6]))).toEqual([]);
    expect(check(curve([4, 6, 4, 6, 4, 6.01])).map((f) => f.rule)).toEqual(["oscillation"]);
  });

  it("fires at a relative slope of exactly relative_slope_min (>=)", () => {
    // trend 0.5 per step around mean 8 plus a swing orthogonal to the trend: slope / mean = 0.0625 exactly, CV 0.42
    const w = curve([10.75, 3.25, 7.75, 8.25, 4.75, 13.25]);
    expect(check(w, { HO: { relative_slope_min: 0.0625 } }).map((f) => f.rule)).toEqual(["oscillation"]);
    expect(check(w, { HO: { relative_slope_min: 0.0626 } })).toEqual([]);
  });

  it("is scale-free: the same curve in other units gives the same answer", () => {
    expect(check(curve([100, 300, 100, 300, 100, 300])).map((f) => f.rule)).toEqual(["oscillation"]);
    expect(check(curve([0.01, 0.03, 0.01, 0.03, 0.01, 0.03])).map((f) => f.rule)).toEqual(["oscillation"]);
  });

  it("needs `window` values and examines only the last `window`", () => {
    expect(check(curve([1, 3, 1, 3, 1]))).toEqual([]);
    expect(check(curve([1, 3, 1, 3, 1, 3, 1.5, 1.6, 1.7, 1.8, 1.9, 2.0]))).toEqual([]);
    expect(check(curve([1, 3, 1, 3]), { HO: { window: 4 } }).map((f) => f.rule)).toEqual(["oscillation"]);
  });

  it("skips a window whose mean is not positive", () => {
    expect(check(curve([-3, -1, -3, -1, -3, -1]))).toEqual([]);
    expect(check(curve([-1, 1, -1, 1, -1, 1]))).toEqual([]);
  });

  it("checks train and val loss separately", () => {
    const smooth = [2, 1.8, 1.6, 1.4, 1.2, 1.0];
    const swing = [1, 3, 1, 3, 1, 3];
    expect(check(curves(smooth, swing)).map((f) => f.evidence.indicator)).toEqual(["cv(last 6 val_loss)"]);
    expect(check(curves(swing, swing)).map((f) => f.evidence.indicator)).toEqual([
      "cv(last 6 train_loss)",
      "cv(last 6 val_loss)",
    ]);
  });

  it("is silent when the metrics are missing, and skips non-finite values", () => {
    expect(rule().check(ctxFrom([{ step: 12, layers: [] }], 20))).toEqual([]);
    expect(check(curve([1, 3, 1, 3, 1, 3], "train_acc"))).toEqual([]);
    // the null leaves only five finite values
    expect(check(curve([1, 3, null, 1, 3, 1, 3]).slice(1))).toEqual([]);
    expect(check(curve([1, 3, null, 1, 3, 1, 3])).map((f) => f.rule)).toEqual(["oscillation"]);
  });
});

describe("HO in the engine", () => {
  const engineHO = (overrides: Parameters<typeof onlyRules>[1] = {}) => new DiagnosisEngine(onlyRules(["HO"], overrides));

  it("is not checked before step 10 with max_steps 20, then needs two detections", () => {
    const verdicts = feed(engineHO(), "t", curve(swinging(12), "train_loss", { max_steps: 20 }));
    expect(verdicts.slice(0, 10).every((v) => v.symptoms.length === 0)).toBe(true);
    expect(tags(verdicts[10]!)).toEqual(["HO:oscillation:watch"]);
    expect(tags(verdicts[11]!)).toEqual(["HO:oscillation:stop"]);
    expect(verdicts[11]?.stopped_at).toBe(11);
  });

  it("takes max_steps from the study config", () => {
    const verdicts = feed(engineHO({ max_steps: 20 }), "t", curve(swinging(12)));
    expect(verdicts.findIndex((v) => v.symptoms.length > 0)).toBe(10);
    expect(verdicts[11]?.stop).toBe(true);
  });

  it("is silent when max_steps is unknown", () => {
    const verdicts = feed(engineHO(), "t", curve(swinging(14)));
    expect(verdicts.every((v) => v.symptoms.length === 0 && !v.stop)).toBe(true);
  });

  it("stops a protected trial (HO is not protectable)", () => {
    const engine = engineHO({ max_steps: 20 });
    const losses = swinging(12);
    fillCohort(engine, 10, [3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    const verdicts = feed(engine, "best", curve(losses));
    expect(verdicts[10]?.protected).toBe(true);
    expect(tags(verdicts[10]!)).toEqual(["HO:oscillation:watch"]);
    expect(tags(verdicts[11]!)).toEqual(["HO:oscillation:stop"]);
    expect(verdicts[11]?.stop).toBe(true);
  });

  it("is held back for a protected trial only when configured protectable", () => {
    const engine = engineHO({ max_steps: 20, rules: { HO: { protectable: true } } });
    fillCohort(engine, 10, [3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    const verdicts = feed(engine, "best", curve(swinging(12)));
    expect(tags(verdicts[11]!)).toEqual(["HO:oscillation:protected"]);
    expect(verdicts[11]?.stop).toBe(false);
  });
});
