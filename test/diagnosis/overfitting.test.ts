import { describe, expect, it } from "vitest";
import { OverfittingRule } from "../../src/diagnosis/overfitting.js";
import type { Measured, PayloadV1 } from "../../src/diagnosis/types.js";
import { ctxFrom, curves, feed, fillCohort, makeEngine, tags } from "../helpers.js";
import { pinnedOptions, ruleOf, type RuleOverrides } from "./rule-fixture.js";

const rule = ruleOf("OF", OverfittingRule);

function check(train: readonly Measured[], val: readonly Measured[], overrides: RuleOverrides = {}) {
  return rule(overrides).check(ctxFrom(curves(train, val)));
}

// best val 0.8 at step 1; from step 4 (3 steps later) val is above 1.05 x 0.8 while train keeps falling
const TRAIN = [2.0, 1.5, 1.2, 1.0, 0.9, 0.8, 0.7];
const VAL = [1.0, 0.8, 0.9, 0.95, 1.0, 1.1, 1.2];

describe("OF rule formula", () => {
  it("runs its formula tests on the pre-calibration options (docs/examples/pre-calibration.json; shipped defaults: test/schema/documented-defaults.test.ts)", () => {
    expect(pinnedOptions("OF", ["val_metric", "train_metric", "patience", "rise_ratio", "min_step"])).toEqual(["val_loss", "train_loss", 3, 1.05, 3]);
    expect(pinnedOptions("OF", ["persistence", "protectable", "enabled", "stage"])).toEqual([2, true, true, { start: 0, end: 1 }]);
  });

  it("fires when val rose above 1.05 x its best, 3 steps after it, while train still falls", () => {
    const findings = check(TRAIN.slice(0, 5), VAL.slice(0, 5));
    expect(findings).toHaveLength(1);
    expect(findings[0]?.rule).toBe("val_rising_train_falling");
    expect(findings[0]?.evidence.indicator).toBe("val_loss");
    expect(findings[0]?.evidence.value).toBe(1.0);
    expect(findings[0]?.evidence.threshold).toBeCloseTo(0.84, 12);
    expect(findings[0]?.message).toContain("best 0.8 at step 1");
  });

  it("is silent on a healthy run where val keeps improving", () => {
    expect(check(TRAIN, [1.0, 0.9, 0.85, 0.8, 0.78, 0.77, 0.76])).toEqual([]);
  });

  it("waits `patience` steps after the best val loss", () => {
    expect(check(TRAIN.slice(0, 4), VAL.slice(0, 4))).toEqual([]); // step 3: 2 steps after the best
    expect(check(TRAIN.slice(0, 4), VAL.slice(0, 4), { OF: { patience: 2 } }).map((f) => f.rule)).toEqual([
      "val_rising_train_falling",
    ]);
  });

  it("does not fire when val is exactly best + 5 % (strict >), fires just above", () => {
    // best 1 at step 0: the limit is exactly 1.05
    expect(check([1, 0.9, 0.8, 0.7], [1, 1.02, 1.03, 1.05])).toEqual([]);
    expect(check([1, 0.9, 0.8, 0.7], [1, 1.02, 1.03, 1.0500001]).map((f) => f.rule)).toEqual([
      "val_rising_train_falling",
    ]);
  });

  it("does not fire when the train loss is not below its value at the best val step", () => {
    expect(check([2, 1, 1.2, 1.1, 1.0], VAL.slice(0, 5))).toEqual([]); // equal (strict <)
    expect(check([2, 1, 1.2, 1.1, 1.05], VAL.slice(0, 5))).toEqual([]);
    expect(check([2, 1, 1.2, 1.1, 0.99], VAL.slice(0, 5))).toHaveLength(1);
  });

  it("measures from the newest best when val improves again", () => {
    // a new best at step 4 restarts the patience
    expect(check([2, 1.5, 1.2, 1.0, 0.9, 0.8, 0.7], [1.0, 0.8, 0.9, 0.95, 0.7, 0.9, 0.9])).toEqual([]);
  });

  it("uses |best| for the margin, so negative losses work", () => {
    // best -1: limit -1 + 0.05 = -0.95
    expect(check([5, 4, 3, 2], [-1, -0.99, -0.98, -0.9]).map((f) => f.rule)).toEqual(["val_rising_train_falling"]);
    expect(check([5, 4, 3, 2], [-1, -0.99, -0.98, -0.96])).toEqual([]);
  });

  describe("missing and non-finite inputs", () => {
    it("is silent without val loss at the current step", () => {
      const history = curves(TRAIN.slice(0, 5), VAL.slice(0, 4));
      expect(rule().check(ctxFrom(history))).toEqual([]);
      expect(check(TRAIN.slice(0, 5), [...VAL.slice(0, 4), null])).toEqual([]);
    });

    it("is silent without train loss now or at the best step", () => {
      expect(check([...TRAIN.slice(0, 4), null], VAL.slice(0, 5))).toEqual([]);
      expect(check([2.0, null, 1.2, 1.0, 0.9], VAL.slice(0, 5))).toEqual([]);
      expect(rule().check(ctxFrom(curves([], VAL.slice(0, 5))))).toEqual([]);
    });

    it("is silent on layers-only payloads", () => {
      expect(rule().check(ctxFrom([{ step: 4, layers: [{ grad_abs_mean: 1e-3 }] }]))).toEqual([]);
    });

    it("reads the configured metric names", () => {
      const history: PayloadV1[] = curves(TRAIN.slice(0, 5), VAL.slice(0, 5)).map((p) => ({
        step: p.step,
        metrics: { loss: p.metrics?.train_loss ?? null, valid_loss: p.metrics?.val_loss ?? null },
      }));
      expect(rule().check(ctxFrom(history))).toEqual([]);
      expect(rule({ OF: { train_metric: "loss", val_metric: "valid_loss" } }).check(ctxFrom(history))).toHaveLength(1);
    });
  });
});

describe("OF in the engine", () => {
  it("needs two consecutive detections on metrics-only payloads", () => {
    const verdicts = feed(makeEngine(), "t", curves(TRAIN, VAL));
    expect(verdicts.map((v) => tags(v).join(","))).toEqual([
      "",
      "",
      "",
      "",
      "OF:val_rising_train_falling:watch",
      "OF:val_rising_train_falling:stop",
      "", // already stopped: no further diagnosis
    ]);
    expect(verdicts[5]?.stop).toBe(true);
    expect(verdicts[5]?.stopped_at).toBe(5);
    expect(verdicts[6]?.stopped_at).toBe(5);
  });

  it("is not checked before min_step 3", () => {
    const train = [1, 0.9, 0.8, 0.7, 0.6];
    const val = [1, 2, 2, 2, 2];
    expect(check(train.slice(0, 2), val.slice(0, 2), { OF: { patience: 1 } })).toHaveLength(1);
    const verdicts = feed(makeEngine({ rules: { OF: { patience: 1 } } }), "t", curves(train, val));
    expect(verdicts.map((v) => tags(v).join(","))).toEqual([
      "",
      "",
      "",
      "OF:val_rising_train_falling:watch",
      "OF:val_rising_train_falling:stop",
    ]);
  });

  it("resets after a step without detection", () => {
    const train = [2.0, 1.5, 1.2, 1.0, 0.9, 0.8, 0.7, 0.6];
    const val = [1.0, 0.8, 0.9, 0.95, 1.0, 0.83, 1.0, 1.0];
    const verdicts = feed(makeEngine(), "t", curves(train, val));
    expect(verdicts.map((v) => v.symptoms.map((s) => s.action).join(","))).toEqual([
      "",
      "",
      "",
      "",
      "watch",
      "",
      "watch",
      "stop",
    ]);
  });

  it("does not stop a protected trial", () => {
    const engine = makeEngine();
    fillCohort(engine, 4, [2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    const verdicts = feed(engine, "best", curves(TRAIN, VAL));
    expect(verdicts[4]?.protected).toBe(true);
    expect(verdicts.slice(4).map((v) => tags(v).join(","))).toEqual([
      "OF:val_rising_train_falling:watch",
      "OF:val_rising_train_falling:protected",
      "OF:val_rising_train_falling:protected",
    ]);
    expect(verdicts.some((v) => v.stop)).toBe(false);
  });
});
