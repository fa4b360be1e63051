import { describe, expect, it } from "vitest";
import { VanishingGradientRule } from "../../src/diagnosis/vanishing-gradient.js";
import type { PayloadV1 } from "../../src/diagnosis/types.js";
import { ctxOf, feed, fillCohort, layers10, makeEngine, tags } from "../helpers.js";
import { layerCheck, pinnedOptions, ruleOf } from "./rule-fixture.js";

const rule = ruleOf("VG", VanishingGradientRule);
const check = layerCheck(rule, "grad_abs_mean", 0, 20);

const TEN = (x: number): number[] => Array<number>(10).fill(x);

/** A payload of ten layers with vanishing gradients (median 1e-7), nothing else. */
function vanishing(step: number, maxSteps?: number): PayloadV1 {
  const p: PayloadV1 = { step, layers: layers10({ grad_abs_mean: 1e-7 }) };
  if (maxSteps !== undefined) p.max_steps = maxSteps;
  return p;
}

function healthy(step: number, maxSteps?: number): PayloadV1 {
  const p: PayloadV1 = { step, layers: layers10() };
  if (maxSteps !== undefined) p.max_steps = maxSteps;
  return p;
}

describe("VG rule formula", () => {
  it("runs its formula tests on the pre-calibration options (docs/examples/pre-calibration.json; shipped defaults: test/schema/documented-defaults.test.ts)", () => {
    expect(pinnedOptions("VG", ["grad_median_min", "ratio_median_min", "zero_layer_grad", "persistence", "protectable", "stage"])).toEqual([
      1e-5, 1e-4, true, 2, true, { start: 0, end: 0.5 },
    ]);
  });

  it("is silent on healthy gradients", () => {
    expect(check(TEN(1e-3))).toEqual([]);
  });

  it("fires grad_median_low when the median gradient is below 1e-5", () => {
    const findings = check(TEN(1e-6));
    expect(findings).toHaveLength(1);
    expect(findings[0]?.rule).toBe("grad_median_low");
    expect(findings[0]?.evidence).toEqual({ indicator: "median(grad_abs_mean)", value: 1e-6, threshold: 1e-5 });
  });

  it("does not fire grad_median_low at exactly 1e-5 (strict <)", () => {
    expect(check(TEN(1e-5))).toEqual([]);
    expect(check([1e-6, 1e-5, 1])).toEqual([]);
    expect(check([1e-6, 0.99e-5, 1]).map((f) => f.rule)).toEqual(["grad_median_low"]);
  });

  it("fires zero_layer_grad when one layer has no gradient at all", () => {
    const g = TEN(1e-3);
    g[6] = 0;
    const findings = check(g);
    expect(findings).toHaveLength(1);
    expect(findings[0]?.rule).toBe("zero_layer_grad");
    expect(findings[0]?.evidence).toEqual({ indicator: "grad_abs_mean", value: 0, threshold: 0, layer: "l6" });
  });

  it("does not check zero layers when zero_layer_grad is off", () => {
    const g = TEN(1e-3);
    g[6] = 0;
    expect(check(g, { VG: { zero_layer_grad: false } })).toEqual([]);
  });

  it("fires grad_ratio_low when gradients shrink below 1e-4 x per layer towards the input", () => {
    const findings = check([1e-9, 1e-4, 10]);
    expect(findings).toHaveLength(1);
    expect(findings[0]?.rule).toBe("grad_ratio_low");
    expect(findings[0]?.evidence.value).toBeCloseTo(1e-5, 15);
    expect(findings[0]?.evidence.threshold).toBe(1e-4);
  });

  it("does not fire grad_ratio_low at a median ratio of exactly 1e-4 (strict <)", () => {
    expect(check([1, 1e4, 1e8])).toEqual([]);
    expect(check([0.99, 1e4, 1e8]).map((f) => f.rule)).toEqual(["grad_ratio_low"]);
  });

  it("reports every sub-rule that holds, in order", () => {
    expect(check([0, 1e-12, 1e-6]).map((f) => f.rule)).toEqual(["grad_median_low", "zero_layer_grad", "grad_ratio_low"]);
  });

  it("is silent without layers, with only metrics, or when no layer carries grad_abs_mean", () => {
    expect(rule().check(ctxOf({ step: 0 }, 20))).toEqual([]);
    expect(rule().check(ctxOf({ step: 0, metrics: { train_loss: 2.3 } }, 20))).toEqual([]);
    expect(rule().check(ctxOf({ step: 0, layers: layers10({ grad_abs_mean: undefined }) }, 20))).toEqual([]);
  });

  it("ignores non-finite gradients (NF's business)", () => {
    expect(check([null, NaN, -Infinity])).toEqual([]);
    expect(check([null, 1e-3, NaN, 1e-3, 1e-3])).toEqual([]);
    expect(check([null, 1e-7, NaN, 1e-7]).map((f) => f.rule)).toEqual(["grad_median_low"]);
  });
});

describe("VG in the engine", () => {
  it("needs two consecutive detections: watch, then stop", () => {
    const verdicts = feed(makeEngine(), "t", [healthy(0, 20), vanishing(1), vanishing(2)]);
    expect(verdicts[0]?.symptoms).toEqual([]);
    expect(tags(verdicts[1]!)).toEqual(["VG:grad_median_low:watch"]);
    expect(verdicts[1]?.stop).toBe(false);
    expect(verdicts[1]?.symptoms[0]).toMatchObject({ count: 1, persistence: 2 });
    expect(tags(verdicts[2]!)).toEqual(["VG:grad_median_low:stop"]);
    expect(verdicts[2]?.symptoms[0]).toMatchObject({ count: 2, persistence: 2 });
    expect(verdicts[2]?.stop).toBe(true);
    expect(verdicts[2]?.stopped_at).toBe(2);
  });

  it("resets the count after a step without detection", () => {
    const verdicts = feed(makeEngine(), "t", [vanishing(0, 20), healthy(1), vanishing(2), healthy(3), vanishing(4), vanishing(5)]);
    expect(verdicts.map((v) => tags(v).join(","))).toEqual([
      "VG:grad_median_low:watch",
      "",
      "VG:grad_median_low:watch",
      "",
      "VG:grad_median_low:watch",
      "VG:grad_median_low:stop",
    ]);
  });

  it("counts the family, not the sub-rule", () => {
    const zero = layers10({ grad_abs_mean: [1e-3, 1e-3, 0, 1e-3, 1e-3, 1e-3, 1e-3, 1e-3, 1e-3, 1e-3] });
    const verdicts = feed(makeEngine(), "t", [vanishing(0, 20), { step: 1, layers: zero }]);
    expect(tags(verdicts[1]!)).toEqual(["VG:zero_layer_grad:stop"]);
  });

  describe("stage: first half only", () => {
    it("fires at step 9 but not at step 10 with max_steps 20", () => {
      const engine = makeEngine({ rules: { VG: { persistence: 1 } } });
      expect(tags(engine.report("a", vanishing(9, 20)))).toEqual(["VG:grad_median_low:stop"]);
      const v = engine.report("b", vanishing(10, 20));
      expect(v.symptoms).toEqual([]);
      expect(v.stop).toBe(false);
    });

    it("with default persistence: watch at 8 and stop at 9, but a detection at 9 cannot be confirmed at 10", () => {
      const engine = makeEngine();
      const early = feed(engine, "early", [healthy(7, 20), vanishing(8), vanishing(9)]);
      expect(early.map((v) => v.stop)).toEqual([false, false, true]);
      const late = feed(engine, "late", [healthy(8, 20), vanishing(9), vanishing(10), vanishing(11)]);
      expect(late.map((v) => tags(v).join(","))).toEqual(["", "VG:grad_median_low:watch", "", ""]);
      expect(late.some((v) => v.stop)).toBe(false);
    });

    it("uses floor(0.5 * max_steps): with max_steps 21 the window is steps 0..9", () => {
      const engine = makeEngine({ rules: { VG: { persistence: 1 } } });
      expect(engine.report("a", vanishing(9, 21)).stop).toBe(true);
      expect(engine.report("b", vanishing(10, 21)).stop).toBe(false);
    });

    it("takes max_steps from the study config when the payload does not carry it", () => {
      const engine = makeEngine({ max_steps: 20, rules: { VG: { persistence: 1 } } });
      expect(engine.report("a", vanishing(9)).stop).toBe(true);
      expect(engine.report("b", vanishing(10)).stop).toBe(false);
    });

    it("lets the payload's max_steps override the study's", () => {
      const engine = makeEngine({ max_steps: 100, rules: { VG: { persistence: 1 } } });
      expect(engine.report("a", vanishing(30)).stop).toBe(true);
      expect(engine.report("b", vanishing(30, 20)).stop).toBe(false);
    });

    it("remembers a trial's max_steps from an earlier payload", () => {
      const engine = makeEngine({ rules: { VG: { persistence: 1 } } });
      feed(engine, "t", [healthy(0, 20), healthy(1)]);
      expect(engine.report("t", vanishing(9)).stop).toBe(true);
    });

    it("is silent when max_steps is unknown", () => {
      const engine = makeEngine({ rules: { VG: { persistence: 1 } } });
      const verdicts = feed(engine, "t", [vanishing(0), vanishing(1), vanishing(2)]);
      expect(verdicts.every((v) => v.symptoms.length === 0 && !v.stop)).toBe(true);
    });
  });

  it("respects a configured min_step", () => {
    const engine = makeEngine({ rules: { VG: { min_step: 2 } } });
    const verdicts = feed(engine, "t", [vanishing(0, 20), vanishing(1), vanishing(2), vanishing(3)]);
    expect(verdicts.map((v) => tags(v).join(","))).toEqual([
      "",
      "",
      "VG:grad_median_low:watch",
      "VG:grad_median_low:stop",
    ]);
  });

  it("does not stop a protected trial: the action is protected", () => {
    const engine = makeEngine({ max_steps: 20 });
    fillCohort(engine, 0, [2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    const verdicts = feed(engine, "best", [
      { ...vanishing(0), metrics: { train_loss: 1 } },
      { ...vanishing(1), metrics: { train_loss: 0.9 } },
      { ...vanishing(2), metrics: { train_loss: 0.8 } },
    ]);
    expect(verdicts.map((v) => v.protected)).toEqual([true, true, true]);
    expect(verdicts.map((v) => tags(v).join(","))).toEqual([
      "VG:grad_median_low:watch",
      "VG:grad_median_low:protected",
      "VG:grad_median_low:protected",
    ]);
    expect(verdicts.some((v) => v.stop)).toBe(false);
    expect(verdicts[2]?.symptoms[0]?.count).toBe(3);
  });

  it("stops a protected trial when VG is configured as not protectable", () => {
    const engine = makeEngine({ max_steps: 20, rules: { VG: { protectable: false } } });
    fillCohort(engine, 0, [2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    const verdicts = feed(engine, "best", [
      { ...vanishing(0), metrics: { train_loss: 1 } },
      { ...vanishing(1), metrics: { train_loss: 0.9 } },
    ]);
    expect(verdicts[1]?.protected).toBe(true);
    expect(tags(verdicts[1]!)).toEqual(["VG:grad_median_low:stop"]);
  });
});
