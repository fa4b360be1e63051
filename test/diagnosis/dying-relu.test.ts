import { describe, expect, it } from "vitest";
import { DyingReluRule } from "../../src/diagnosis/dying-relu.js";
import type { Measured } from "../../src/diagnosis/types.js";
import { ctxOf, layers10 } from "../helpers.js";
import { layerCheck, pinnedOptions, ruleOf } from "./rule-fixture.js";

// the engine mechanics (min_step, persistence, reset, protection): layer-families.test.ts
const rule = ruleOf("DR", DyingReluRule);
const check = layerCheck(rule, "grad_zero_frac", 5);

/** Input layer first, then nine hidden/output layers with zero fraction `hidden`. */
const net = (input: Measured, hidden: Measured): Measured[] => [input, ...Array<Measured>(9).fill(hidden)];

describe("DR rule formula", () => {
  it("runs its formula tests on the pre-calibration options (docs/examples/pre-calibration.json; shipped defaults: test/schema/documented-defaults.test.ts)", () => {
    expect(pinnedOptions("DR", ["zero_frac_median_max", "exclude_input_layer", "min_step", "persistence", "protectable", "stage"])).toEqual([
      0.5, true, 4, 2, true, { start: 0, end: 1 },
    ]);
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
