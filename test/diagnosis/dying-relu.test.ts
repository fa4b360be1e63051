import { describe, expect, it } from "vitest";
import { DyingReluRule } from "../../src/diagnosis/dying-relu.js";
import type { Measured, PayloadV1 } from "../../src/diagnosis/types.js";
import {
  ctxOf,
  feed,
  fillCohort,
  layers10,
  layersWith,
  makeConfig,
  makeEngine,
  tags,
  type ConfigOverrides,
} from "../helpers.js";

function rule(overrides: ConfigOverrides["rules"] = {}): DyingReluRule {
  return new DyingReluRule(makeConfig({ rules: overrides }).rules.DR);
}

function check(z: readonly Measured[], overrides: ConfigOverrides["rules"] = {}) {
  return rule(overrides).check(ctxOf({ step: 5, layers: layersWith("grad_zero_frac", z) }));
}

/** Input layer first, then nine hidden/output layers with zero fraction `hidden`. */
const net = (input: Measured, hidden: Measured): Measured[] => [input, ...Array<Measured>(9).fill(hidden)];

function dying(step: number, extra: Partial<PayloadV1> = {}): PayloadV1 {
  return { step, layers: layers10({ grad_zero_frac: net(0.05, 0.8) }), ...extra };
}

describe("DR rule formula", () => {
  it("runs its formula tests on the pre-calibration options (docs/examples/pre-calibration.json; shipped defaults: test/schema/documented-defaults.test.ts)", () => {
    const o = makeConfig().rules.DR;
    expect([o.zero_frac_median_max, o.exclude_input_layer, o.min_step, o.persistence, o.protectable]).toEqual([
      0.5, true, 4, 2, true,
    ]);
    expect(o.stage).toEqual({ start: 0, end: 1 });
  });

  it("is silent on healthy zero fractions", () => {
    expect(check(net(0.05, 0.05))).toEqual([]);
  });

  it("fires when the median zero fraction exceeds 0.5", () => {
    const findings = check(net(0.05, 0.6));
    expect(findings).toHaveLength(1);
    expect(findings[0]?.rule).toBe("grad_zero_frac_high");
    expect(findings[0]?.evidence).toEqual({ indicator: "median(grad_zero_frac)", value: 0.6, threshold: 0.5 });
  });

  it("does not fire at exactly 0.5 (strict >)", () => {
    expect(check(net(0.05, 0.5))).toEqual([]);
    expect(check(net(0.05, 0.5000001)).map((f) => f.rule)).toEqual(["grad_zero_frac_high"]);
  });

  it("leaves the input layer out by default (input sparsity is not a dead unit)", () => {
    // a healthy MNIST MLP shows 0.41 on its input kernel
    expect(check(net(0.41, 0.05))).toEqual([]);
    expect(check([0.9, 0.2])).toEqual([]);
    expect(check([0.9, 0.2], { DR: { exclude_input_layer: false } }).map((f) => f.rule)).toEqual(["grad_zero_frac_high"]);
  });

  it("is silent when only the excluded input layer reports", () => {
    expect(check([1])).toEqual([]);
    expect(check([1], { DR: { exclude_input_layer: false } }).map((f) => f.rule)).toEqual(["grad_zero_frac_high"]);
  });

  it("honours a configured threshold", () => {
    expect(check(net(0, 0.3), { DR: { zero_frac_median_max: 0.25 } }).map((f) => f.rule)).toEqual(["grad_zero_frac_high"]);
  });

  it("is silent without layers, with only metrics, or when no layer carries grad_zero_frac", () => {
    expect(rule().check(ctxOf({ step: 5 }))).toEqual([]);
    expect(rule().check(ctxOf({ step: 5, metrics: { train_loss: 1 } }))).toEqual([]);
    expect(rule().check(ctxOf({ step: 5, layers: layers10({ grad_zero_frac: undefined }) }))).toEqual([]);
  });

  it("ignores non-finite zero fractions", () => {
    expect(check([0.05, null, NaN, Infinity])).toEqual([]);
    expect(check([0.05, null, 0.8, NaN, 0.8]).map((f) => f.rule)).toEqual(["grad_zero_frac_high"]);
    expect(check([0.05, null, 0.8, NaN, 0.1, 0.1])).toEqual([]);
  });
});

describe("DR in the engine", () => {
  it("is not checked before min_step 4, then needs two detections", () => {
    const verdicts = feed(makeEngine(), "t", [0, 1, 2, 3, 4, 5].map((s) => dying(s)));
    expect(verdicts.map((v) => tags(v).join(","))).toEqual([
      "",
      "",
      "",
      "",
      "DR:grad_zero_frac_high:watch",
      "DR:grad_zero_frac_high:stop",
    ]);
    expect(verdicts[5]?.stopped_at).toBe(5);
  });

  it("applies at every step with max_steps unknown, and past max_steps", () => {
    const engine = makeEngine();
    expect(feed(engine, "a", [dying(30), dying(31)]).map((v) => v.stop)).toEqual([false, true]);
    expect(feed(engine, "b", [dying(30, { max_steps: 20 }), dying(31)]).map((v) => v.stop)).toEqual([false, true]);
  });

  it("resets after a healthy step", () => {
    const ok: PayloadV1 = { step: 5, layers: layers10() };
    const verdicts = feed(makeEngine(), "t", [dying(4), ok, dying(6), dying(7)]);
    expect(verdicts.map((v) => v.stop)).toEqual([false, false, false, true]);
    expect(verdicts[2]?.symptoms[0]?.count).toBe(1);
  });

  it("does not stop a protected trial", () => {
    const engine = makeEngine();
    fillCohort(engine, 4, [2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    const verdicts = feed(engine, "best", [
      dying(4, { metrics: { train_loss: 1 } }),
      dying(5, { metrics: { train_loss: 0.9 } }),
    ]);
    expect(verdicts.map((v) => v.protected)).toEqual([true, true]);
    expect(tags(verdicts[1]!)).toEqual(["DR:grad_zero_frac_high:protected"]);
    expect(verdicts[1]?.stop).toBe(false);
  });
});
