import { describe, expect, it } from "vitest";
import { SaturatedActivationRule } from "../../src/diagnosis/saturation.js";
import type { LayerIndicators, Measured } from "../../src/diagnosis/types.js";
import { ctxOf, layers10 } from "../helpers.js";
import { layerCheck, pinnedOptions, ruleOf, type RuleOverrides } from "./rule-fixture.js";

// the engine mechanics (min_step, persistence, reset, protection): layer-families.test.ts
const rule = ruleOf("SAT", SaturatedActivationRule);
const check = layerCheck(rule, "act_saturated_frac", 3);

function checkLayers(layers: LayerIndicators[], overrides: RuleOverrides = {}) {
  return rule(overrides).check(ctxOf({ step: 3, layers }));
}

/** Nine hidden layers with saturated fraction `hidden`, then the output layer. */
const net = (hidden: Measured, output: Measured): Measured[] => [...Array<Measured>(9).fill(hidden), output];

describe("SAT rule formula", () => {
  it("runs its formula tests on the pre-calibration options (docs/examples/pre-calibration.json; shipped defaults: test/schema/documented-defaults.test.ts)", () => {
    expect(pinnedOptions("SAT", ["saturated_frac_median_max", "exclude_output_layer", "min_step", "persistence", "protectable", "stage"])).toEqual([
      0.5, true, 1, 2, true, { start: 0, end: 1 },
    ]);
  });

  it("is silent on healthy activations", () => {
    expect(check(net(0.01, 0.01))).toEqual([]);
  });

  it("fires when the median saturated fraction exceeds 0.5", () => {
    const findings = check(net(0.6, 0.1));
    expect(findings).toHaveLength(1);
    expect(findings[0]?.rule).toBe("saturated_units");
    expect(findings[0]?.evidence).toEqual({ indicator: "median(act_saturated_frac)", value: 0.6, threshold: 0.5 });
  });

  it("does not fire at exactly 0.5 (strict >)", () => {
    expect(check(net(0.5, 0.5))).toEqual([]);
    expect(check([0.4, 0.6, 0.99])).toEqual([]); // median of [0.4, 0.6] is exactly 0.5
    expect(check(net(0.5000001, 0.1)).map((f) => f.rule)).toEqual(["saturated_units"]);
  });

  it("leaves the output layer out when more than one layer reports (a confident sigmoid output is saturated by design)", () => {
    expect(check(net(0.01, 1))).toEqual([]);
    expect(check([0.6, 0.2])).toHaveLength(1);
    expect(check([0.6, 0.2], { SAT: { exclude_output_layer: false } })).toEqual([]);
    expect(check([0.1, 1], { SAT: { exclude_output_layer: false } }).map((f) => f.rule)).toEqual(["saturated_units"]);
  });

  it("keeps the output layer when it is the only layer reporting", () => {
    expect(check([0.9]).map((f) => f.rule)).toEqual(["saturated_units"]);
    const onlyOutput: LayerIndicators[] = [{ name: "relu1" }, { name: "relu2" }, { name: "sigmoid_out", act_saturated_frac: 0.9 }];
    expect(checkLayers(onlyOutput).map((f) => f.rule)).toEqual(["saturated_units"]);
  });

  it("uses only the layers that carry the field (sigmoid/tanh layers)", () => {
    const layers: LayerIndicators[] = [
      { name: "relu1", grad_abs_mean: 1e-3 },
      { name: "tanh1", act_saturated_frac: 0.7 },
      { name: "tanh2", act_saturated_frac: 0.8 },
      { name: "relu2", grad_abs_mean: 1e-3 },
    ];
    // the output layer does not carry the field, so nothing is dropped
    expect(checkLayers(layers).map((f) => f.evidence.value)).toEqual([0.75]);
  });

  it("is silent without layers, with only metrics, or when no layer carries the field", () => {
    expect(rule().check(ctxOf({ step: 3 }))).toEqual([]);
    expect(rule().check(ctxOf({ step: 3, metrics: { train_loss: 1 } }))).toEqual([]);
    expect(checkLayers(layers10({ act_saturated_frac: undefined, act_zero_frac: 0.99 }))).toEqual([]);
  });

  it("ignores non-finite saturated fractions", () => {
    expect(check([null, NaN, Infinity])).toEqual([]);
    expect(check([0.8, null, 0.8, NaN, 0.1]).map((f) => f.rule)).toEqual(["saturated_units"]);
  });
});
