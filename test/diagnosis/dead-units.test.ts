import { describe, expect, it } from "vitest";
import { DeadUnitRule } from "../../src/diagnosis/dead-units.js";
import type { LayerIndicators, Measured } from "../../src/diagnosis/types.js";
import { ctxOf, layers10, layersWith } from "../helpers.js";
import { layerCheck, pinnedOptions, ruleOf, type RuleOverrides } from "./rule-fixture.js";

// the engine mechanics (min_step, persistence, reset, protection): layer-families.test.ts
const rule = ruleOf("DEAD", DeadUnitRule);
const check = layerCheck(rule, "act_zero_frac", 3);

function checkLayers(layers: LayerIndicators[], overrides: RuleOverrides = {}) {
  return rule(overrides).check(ctxOf({ step: 3, layers }));
}

/** Nine hidden layers with dead fraction `hidden`, then the output layer. */
const net = (hidden: Measured, output: Measured): Measured[] => [...Array<Measured>(9).fill(hidden), output];

describe("DEAD rule formula", () => {
  it("runs its formula tests on the pre-calibration options (docs/examples/pre-calibration.json; shipped defaults: test/schema/documented-defaults.test.ts)", () => {
    expect(pinnedOptions("DEAD", ["dead_frac_median_max", "exclude_output_layer", "min_step", "persistence", "protectable", "stage"])).toEqual([
      0.7, true, 1, 2, true, { start: 0, end: 1 },
    ]);
  });

  it("is silent on healthy activations", () => {
    expect(check(net(0.05, 0.05))).toEqual([]);
  });

  it("fires when the median dead fraction exceeds 0.7", () => {
    const findings = check(net(0.8, 0.1));
    expect(findings).toHaveLength(1);
    expect(findings[0]?.rule).toBe("dead_units");
    expect(findings[0]?.evidence).toEqual({ indicator: "median(act_zero_frac)", value: 0.8, threshold: 0.7 });
  });

  it("does not fire at exactly 0.7 (strict >)", () => {
    expect(check(net(0.7, 0.7))).toEqual([]);
    expect(check(net(0.7000001, 0.1)).map((f) => f.rule)).toEqual(["dead_units"]);
  });

  it("leaves the output layer out when more than one layer reports", () => {
    expect(check(net(0.05, 1))).toEqual([]);
    expect(check([0.75, 0])).toHaveLength(1);
    expect(check([0.75, 0], { DEAD: { exclude_output_layer: false } })).toEqual([]);
  });

  it("keeps the output layer when it is the only layer reporting", () => {
    expect(check([0.9]).map((f) => f.rule)).toEqual(["dead_units"]);
    const onlyOutput: LayerIndicators[] = [{ name: "h1" }, { name: "h2" }, { name: "out", act_zero_frac: 0.9 }];
    expect(checkLayers(onlyOutput).map((f) => f.rule)).toEqual(["dead_units"]);
  });

  it("does not drop a hidden layer when the output layer does not carry the field", () => {
    const layers: LayerIndicators[] = [
      { name: "h1", act_zero_frac: 0.75 },
      { name: "h2", act_zero_frac: 0.1 },
      { name: "out" },
    ];
    // hidden values [0.75, 0.1] -> median 0.425; dropping h2 would give 0.75
    expect(checkLayers(layers)).toEqual([]);
    const nonFiniteOut: LayerIndicators[] = [...layers.slice(0, 2), { name: "out", act_zero_frac: null }];
    expect(checkLayers(nonFiniteOut)).toEqual([]);
  });

  it("falls back to bias_grad_zero_frac when no layer carries act_zero_frac", () => {
    const layers = layersWith("bias_grad_zero_frac", net(0.8, 0.1));
    const findings = checkLayers(layers);
    expect(findings).toHaveLength(1);
    expect(findings[0]?.evidence).toEqual({ indicator: "median(bias_grad_zero_frac)", value: 0.8, threshold: 0.7 });
    expect(findings[0]?.message).toContain("bias_grad_zero_frac");
  });

  it("prefers act_zero_frac over bias_grad_zero_frac when both are present", () => {
    const layers = layers10({ act_zero_frac: 0.05, bias_grad_zero_frac: 0.9 });
    expect(checkLayers(layers)).toEqual([]);
  });

  it("does not read kernel zero gradients (input sparsity cannot trigger it)", () => {
    const layers = layers10({ grad_zero_frac: 0.95, act_zero_frac: undefined, bias_grad_zero_frac: undefined });
    expect(checkLayers(layers)).toEqual([]);
  });

  it("is silent without layers, with only metrics, or when neither field is present", () => {
    expect(rule().check(ctxOf({ step: 3 }))).toEqual([]);
    expect(rule().check(ctxOf({ step: 3, metrics: { train_loss: 1 } }))).toEqual([]);
    expect(checkLayers(layers10({ act_zero_frac: undefined, bias_grad_zero_frac: undefined }))).toEqual([]);
  });

  it("ignores non-finite dead fractions", () => {
    expect(check([null, NaN, Infinity])).toEqual([]);
    expect(check([0.8, null, 0.8, NaN, 0.1]).map((f) => f.rule)).toEqual(["dead_units"]);
  });
});
