import { describe, expect, it } from "vitest";
import { NoMoreGainRule } from "../../src/diagnosis/no-more-gain.js";
import { ctxFrom, curve, curves, feed, fillCohort, makeEngine, tags } from "../helpers.js";
import { curveCheck, pinnedOptions, ruleOf } from "./rule-fixture.js";

const rule = ruleOf("NMG", NoMoreGainRule);
const check = curveCheck(rule);

// older half mean 1, newer half mean 1.1: only NMG sees this (no other rule fires on it)
const STALLING = [1, 1, 1, 1.1, 1.1, 1.1, 1.1];

describe("NMG rule formula", () => {
  it("runs its formula tests on the pre-calibration options, off unless enabled (docs/examples/pre-calibration.json; shipped defaults: test/schema/documented-defaults.test.ts)", () => {
    expect(pinnedOptions("NMG", ["enabled", "metrics", "window", "persistence", "protectable", "min_step", "stage"])).toEqual([
      false, ["train_loss", "val_loss"], 6, 2, true, 0, { start: 0, end: 1 },
    ]);
  });

  it("fires when the newer half of the window averages higher than the older half", () => {
    const findings = check([1, 1, 1, 2, 2, 2]);
    expect(findings).toHaveLength(1);
    expect(findings[0]?.rule).toBe("recent_mean_higher");
    expect(findings[0]?.evidence).toEqual({ indicator: "mean(last 3 train_loss)", value: 2, threshold: 1 });
  });

  it("is silent on a decreasing loss", () => {
    expect(check([2, 1.8, 1.6, 1.4, 1.2, 1.0])).toEqual([]);
  });

  it("does not fire when both halves average the same (strict <)", () => {
    expect(check([1, 2, 3, 3, 2, 1])).toEqual([]);
    expect(check([1, 2, 3, 3, 2, 1.000001]).map((f) => f.rule)).toEqual(["recent_mean_higher"]);
  });

  it("needs `window` values and looks only at the last `window`", () => {
    expect(check([1, 1, 2, 2, 2])).toEqual([]);
    expect(check([9, 9, 9, 1, 1, 1, 1, 1, 1])).toEqual([]);
    expect(check([0, 0, 0, 1, 1, 1, 1, 1, 2]).map((f) => f.rule)).toEqual(["recent_mean_higher"]);
  });

  it("splits the window at round(window / 2)", () => {
    // window 5 -> h = 3: older [2, 2] (mean 2), newer [0, 3, 3] (mean 2): equal, silent
    // (with h = 2 it would compare 1.33 with 3 and fire)
    expect(check([2, 2, 0, 3, 3], { NMG: { window: 5 } })).toEqual([]);
    expect(check([1, 1, 2], { NMG: { window: 2 } }).map((f) => f.evidence.indicator)).toEqual(["mean(last 1 train_loss)"]);
  });

  it("checks train and val loss separately", () => {
    const history = curves([2, 1.8, 1.6, 1.4, 1.2, 1.0], [1, 1, 1, 2, 2, 2]);
    expect(rule().check(ctxFrom(history)).map((f) => f.evidence.indicator)).toEqual(["mean(last 3 val_loss)"]);
  });

  it("is silent when the metrics are missing, and skips non-finite values", () => {
    expect(rule().check(ctxFrom([{ step: 8, layers: [] }]))).toEqual([]);
    expect(check([1, 1, 1, 2, 2, 2], {}, "train_acc")).toEqual([]);
    expect(check([1, 1, null, 1, 2, 2])).toEqual([]); // five finite values
    expect(check([1, 1, null, 1, 2, 2, 2]).map((f) => f.rule)).toEqual(["recent_mean_higher"]);
  });
});

describe("NMG in the engine", () => {
  it("is off by default", () => {
    const verdicts = feed(makeEngine(), "t", curve(STALLING));
    expect(verdicts.every((v) => v.symptoms.length === 0 && !v.stop)).toBe(true);
  });

  it("when enabled, needs two consecutive detections", () => {
    const verdicts = feed(makeEngine({ rules: { NMG: { enabled: true } } }), "t", curve(STALLING));
    expect(verdicts.map((v) => tags(v).join(","))).toEqual([
      "",
      "",
      "",
      "",
      "",
      "NMG:recent_mean_higher:watch",
      "NMG:recent_mean_higher:stop",
    ]);
  });

  it("when enabled, applies with max_steps unknown and does not stop a protected trial", () => {
    const engine = makeEngine({ rules: { NMG: { enabled: true } } });
    fillCohort(engine, 0, [2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    const verdicts = feed(engine, "best", curve(STALLING));
    expect(verdicts[0]?.protected).toBe(true);
    expect(tags(verdicts[6]!)).toEqual(["NMG:recent_mean_higher:protected"]);
    expect(verdicts.some((v) => v.stop)).toBe(false);
  });
});
