import { describe, expect, it } from "vitest";
import { DivergenceRule } from "../../src/diagnosis/divergence.js";
import type { PayloadV1 } from "../../src/diagnosis/types.js";
import { ctxFrom, curve, curves, feed, fillCohort, layers10, makeEngine, tags } from "../helpers.js";
import { curveCheck, pinnedOptions, ruleOf } from "./rule-fixture.js";

const rule = ruleOf("DIV", DivergenceRule);
const check = curveCheck(rule);

describe("DIV rule formula", () => {
  it("runs its formula tests on the pre-calibration options (docs/examples/pre-calibration.json; shipped defaults: test/schema/documented-defaults.test.ts)", () => {
    expect(pinnedOptions("DIV", ["metrics", "factor", "min_step", "persistence", "protectable", "stage"])).toEqual([
      ["train_loss"], 2, 1, 2, false, { start: 0, end: 1 },
    ]);
  });

  it("fires when the loss exceeds twice its best earlier value", () => {
    const findings = check([1, 2.5]);
    expect(findings).toHaveLength(1);
    expect(findings[0]?.rule).toBe("loss_above_best");
    expect(findings[0]?.evidence).toEqual({ indicator: "train_loss", value: 2.5, threshold: 2 });
  });

  it("does not fire at exactly twice the best (strict >), fires just above", () => {
    expect(check([1, 2])).toEqual([]);
    expect(check([1, 2.000001]).map((f) => f.rule)).toEqual(["loss_above_best"]);
  });

  it("compares with the best (minimum) of the earlier steps", () => {
    expect(check([1, 0.5, 1.5]).map((f) => f.evidence.threshold)).toEqual([1]);
    expect(check([3, 2, 1, 1.9])).toEqual([]);
    expect(check([3, 2, 1, 2.1])).toHaveLength(1);
  });

  it("does not count the current value as the best", () => {
    expect(check([5])).toEqual([]);
    expect(check([0.1, 100]).map((f) => f.evidence.threshold)).toEqual([0.2]);
  });

  it("is silent on a healthy decreasing loss", () => {
    expect(check(Array.from({ length: 20 }, (_, t) => 2.3 * Math.exp(-0.3 * t) + 0.1))).toEqual([]);
  });

  it("needs a positive best", () => {
    expect(check([0, 5])).toEqual([]);
    expect(check([-1, 5])).toEqual([]);
    expect(check([2, -1, 5])).toEqual([]);
  });

  it("honours factor and metrics", () => {
    expect(check([1, 1.6], { DIV: { factor: 1.5 } })).toHaveLength(1);
    const both = rule({ DIV: { metrics: ["train_loss", "val_loss"] } });
    expect(both.check(ctxFrom(curves([1, 3], [1, 3]))).map((f) => f.evidence.indicator)).toEqual(["train_loss", "val_loss"]);
    expect(rule().check(ctxFrom(curves([1, 1], [1, 3])))).toEqual([]); // val not watched by default
  });

  describe("missing and non-finite inputs", () => {
    it("is silent when the current step does not carry the metric", () => {
      const history: PayloadV1[] = [...curve([1, 3]), { step: 2, layers: layers10() }];
      expect(rule().check(ctxFrom(history))).toEqual([]);
      expect(rule().check(ctxFrom([{ step: 0, layers: layers10() }]))).toEqual([]);
    });

    it("skips non-finite values", () => {
      expect(check([1, null, 2.5]).map((f) => f.evidence.threshold)).toEqual([2]);
      expect(check([1, 1.5, NaN])).toEqual([]);
      expect(check([null, 3])).toEqual([]);
    });
  });
});

describe("DIV in the engine", () => {
  it("stops when the loss stays above twice its best for 2 steps in a row (metrics-only payloads)", () => {
    const verdicts = feed(makeEngine(), "t", curve([1, 0.8, 1.7, 1.8]));
    expect(verdicts.map((v) => tags(v).join(","))).toEqual(["", "", "DIV:loss_above_best:watch", "DIV:loss_above_best:stop"]);
    expect(verdicts[3]?.stopped_at).toBe(3);
    expect(verdicts[3]?.reason).toBe("DIV loss_above_best: train_loss 1.8 is more than 2x its best 0.8");
  });

  it("resets when the loss comes back below the limit", () => {
    const verdicts = feed(makeEngine(), "t", curve([1, 2.5, 1.5, 2.5, 2.6]));
    expect(verdicts.map((v) => v.symptoms.map((s) => s.action).join(","))).toEqual(["", "watch", "", "watch", "stop"]);
  });

  it("respects a configured min_step", () => {
    const verdicts = feed(makeEngine({ rules: { DIV: { min_step: 3 } } }), "t", curve([1, 2.5, 2.5, 2.5, 2.5]));
    expect(verdicts.map((v) => v.symptoms.map((s) => s.action).join(","))).toEqual(["", "", "", "watch", "stop"]);
  });

  it("stops a protected trial (DIV is not protectable)", () => {
    const engine = makeEngine();
    fillCohort(engine, 0, [2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    const verdicts = feed(engine, "best", curve([1, 2.5, 2.6]));
    expect(verdicts.map((v) => v.protected)).toEqual([true, true, true]);
    expect(tags(verdicts[2]!)).toEqual(["DIV:loss_above_best:stop"]);
    expect(verdicts[2]?.stop).toBe(true);
  });

  it("applies past max_steps", () => {
    const verdicts = feed(makeEngine({ max_steps: 3 }), "t", curve([1, 0.9, 0.8, 0.7, 2, 2]));
    expect(verdicts[5]?.stop).toBe(true);
    expect(tags(verdicts[5]!)).toContain("DIV:loss_above_best:stop");
  });
});
