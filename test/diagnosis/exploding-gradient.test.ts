import { describe, expect, it } from "vitest";
import { ExplodingGradientRule } from "../../src/diagnosis/exploding-gradient.js";
import { ctxOf, fillCohort, healthyTrial, layers10, makeEngine, tags } from "../helpers.js";
import { layerCheck, pinnedOptions, ruleOf } from "./rule-fixture.js";

const rule = ruleOf("EG", ExplodingGradientRule);
const check = layerCheck(rule, "grad_abs_mean", 0);

describe("EG rule formula", () => {
  it("runs its formula tests on the pre-calibration options (docs/examples/pre-calibration.json; shipped defaults: test/schema/documented-defaults.test.ts)", () => {
    expect(pinnedOptions("EG", ["grad_median_max", "ratio_median_max", "persistence", "protectable", "min_step", "stage"])).toEqual([
      1e4, 1e3, 1, false, 0, { start: 0, end: 1 },
    ]);
  });

  it("is silent on healthy gradients", () => {
    expect(rule().check(ctxOf({ step: 0, layers: layers10() }))).toEqual([]);
  });

  it("fires grad_median_high when the median gradient exceeds 1e4", () => {
    const findings = rule().check(ctxOf({ step: 0, layers: layers10({ grad_abs_mean: 2e4 }) }));
    expect(findings).toHaveLength(1);
    expect(findings[0]?.rule).toBe("grad_median_high");
    expect(findings[0]?.evidence).toEqual({ indicator: "median(grad_abs_mean)", value: 2e4, threshold: 1e4 });
  });

  it("uses the median, not the maximum", () => {
    // four exploding layers out of ten: the median is still healthy
    expect(check([1e6, 1e6, 1e6, 1e6, 1e-3, 1e-3, 1e-3, 1e-3, 1e-3, 1e-3])).toEqual([]);
  });

  it("does not fire at exactly 1e4 (strict >), fires just above", () => {
    expect(check(Array<number>(10).fill(1e4))).toEqual([]);
    // even count: the median is the mean of the two middle values, exactly 1e4
    expect(check([9999, 9999, 9999, 9999, 9999, 10001, 10001, 10001, 10001, 10001])).toEqual([]);
    expect(check(Array<number>(10).fill(10001)).map((f) => f.rule)).toEqual(["grad_median_high"]);
  });

  it("fires grad_ratio_high when gradients grow > 1e3 x per layer towards the input", () => {
    const findings = check([4, 2e-3, 1e-6]);
    expect(findings).toHaveLength(1);
    expect(findings[0]?.rule).toBe("grad_ratio_high");
    expect(findings[0]?.evidence.indicator).toBe("median(grad_ratio)");
    expect(findings[0]?.evidence.value).toBeCloseTo(2000, 6);
    expect(findings[0]?.evidence.threshold).toBe(1e3);
  });

  it("does not fire at a median ratio of exactly 1e3, fires just above", () => {
    expect(check([1e6, 1000, 1])).toEqual([]);
    expect(check([1001000, 1000, 1]).map((f) => f.rule)).toEqual(["grad_ratio_high"]);
  });

  it("reports both sub-rules when both hold", () => {
    expect(check([1e12, 1e8, 1e5, 1]).map((f) => f.rule)).toEqual(["grad_median_high", "grad_ratio_high"]);
  });

  it("does not count a zero-gradient neighbour as explosion (that is VG)", () => {
    expect(check([1e-3, 0])).toEqual([]);
    expect(check([5, 0, 0])).toEqual([]);
  });

  it("still counts the other quotients when one denominator is zero", () => {
    // q = [2000 / 1] (1 / 0 is skipped): median 2000
    expect(check([2000, 1, 0]).map((f) => f.rule)).toEqual(["grad_ratio_high"]);
    expect(check([2000, 1, 0]).map((f) => f.evidence.value)).toEqual([2000]);
  });

  it("checks only the median with a single layer", () => {
    expect(check([5e3])).toEqual([]);
    expect(check([5e4]).map((f) => f.rule)).toEqual(["grad_median_high"]);
  });

  it("honours configured thresholds", () => {
    expect(check([50, 50], { EG: { grad_median_max: 10 } }).map((f) => f.rule)).toEqual(["grad_median_high"]);
    expect(check([80, 1], { EG: { ratio_median_max: 70 } }).map((f) => f.rule)).toEqual(["grad_ratio_high"]);
  });

  describe("missing and non-finite inputs", () => {
    it("is silent without layers, or with only metrics", () => {
      expect(rule().check(ctxOf({ step: 0 }))).toEqual([]);
      expect(rule().check(ctxOf({ step: 0, layers: [] }))).toEqual([]);
      expect(rule().check(ctxOf({ step: 0, metrics: { train_loss: 1e9 } }))).toEqual([]);
    });

    it("is silent when no layer carries grad_abs_mean", () => {
      expect(rule().check(ctxOf({ step: 0, layers: layers10({ grad_abs_mean: undefined, grad_abs_max: 1e9 }) }))).toEqual([]);
    });

    it("leaves non-finite gradients to NF", () => {
      expect(check([null, NaN, Infinity, -Infinity])).toEqual([]);
    });

    it("skips non-finite layers and uses the finite ones", () => {
      const findings = check([null, NaN, Infinity, 2e4, 2e4, 2e4]);
      expect(findings.map((f) => f.rule)).toEqual(["grad_median_high"]);
      expect(findings[0]?.evidence.value).toBe(2e4);
    });
  });
});

describe("EG in the engine", () => {
  it("stops at once (persistence 1), at step 0", () => {
    const v = makeEngine().report("t", { step: 0, layers: layers10({ grad_abs_mean: 2e4 }) });
    expect(v.stop).toBe(true);
    expect(v.stopped_at).toBe(0);
    expect(tags(v)).toEqual(["EG:grad_median_high:stop"]);
    expect(v.reason).toBe("EG grad_median_high: median gradient magnitude 2.000e+4 exceeds 1.000e+4");
  });

  it("applies at the last planned step, where the engine reports it without stopping (last_step)", () => {
    const engine = makeEngine();
    const payloads = healthyTrial(3, 20, 20);
    payloads[19] = { ...payloads[19]!, layers: layers10({ grad_abs_mean: 5e4 }) };
    const verdicts = payloads.map((p) => engine.report("t", p));
    expect(verdicts.some((v) => v.stop)).toBe(false);
    expect(tags(verdicts[19]!)).toEqual(["EG:grad_median_high:last_step"]);
  });

  it.each([
    ["past max_steps (stage end 1 admits overruns)", 25, 20],
    ["with max_steps unknown", 15, undefined],
  ])("applies %s", (_label, step, maxSteps) => {
    const engine = makeEngine();
    const payloads = healthyTrial(3, step + 1, maxSteps);
    payloads[step] = { ...payloads[step]!, layers: layers10({ grad_abs_mean: 5e4 }) };
    const verdicts = payloads.map((p) => engine.report("t", p));
    expect(verdicts.findIndex((v) => v.stop)).toBe(step);
    expect(tags(verdicts[step]!)).toEqual(["EG:grad_median_high:stop"]);
  });

  it("stops a protected trial (EG is not protectable)", () => {
    const engine = makeEngine({ max_steps: 20 });
    fillCohort(engine, 1, [2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    engine.report("best", { step: 0, metrics: { train_loss: 1.2 }, layers: layers10() });
    const v = engine.report("best", { step: 1, metrics: { train_loss: 1 }, layers: layers10({ grad_abs_mean: 2e4 }) });
    expect(v.protected).toBe(true);
    expect(v.stop).toBe(true);
    expect(tags(v)).toEqual(["EG:grad_median_high:stop"]);
  });

  it("respects a configured min_step", () => {
    const engine = makeEngine({ rules: { EG: { min_step: 2 } } });
    const bad = layers10({ grad_abs_mean: 2e4 });
    expect(engine.report("t", { step: 0, layers: bad }).symptoms).toEqual([]);
    expect(engine.report("t", { step: 1, layers: bad }).symptoms).toEqual([]);
    expect(tags(engine.report("t", { step: 2, layers: bad }))).toEqual(["EG:grad_median_high:stop"]);
  });
});
