import { describe, expect, it } from "vitest";
import { NonFiniteRule } from "../../src/diagnosis/non-finite.js";
import { LAYER_FIELDS } from "../../src/diagnosis/rule.js";
import type { Measured, PayloadV1 } from "../../src/diagnosis/types.js";
import { ctxOf, curve, feed, fillCohort, healthyTrial, layers10, makeEngine, tags } from "../helpers.js";
import { ruleOf } from "./rule-fixture.js";

const rule = ruleOf("NF", NonFiniteRule);

const NON_FINITE: [string, Measured][] = [
  ["null", null],
  ["NaN", NaN],
  ["Infinity", Infinity],
  ["-Infinity", -Infinity],
];

describe("NF rule formula", () => {
  it("is silent on a healthy payload", () => {
    const p: PayloadV1 = { step: 3, metrics: { train_loss: 0.5, val_loss: 0.6 }, layers: layers10(), non_finite: false };
    expect(rule().check(ctxOf(p))).toEqual([]);
  });

  it("is silent when every input is missing", () => {
    expect(rule().check(ctxOf({ step: 0 }))).toEqual([]);
    expect(rule().check(ctxOf({ step: 0, metrics: {}, layers: [] }))).toEqual([]);
  });

  it("treats zero and negative numbers as finite", () => {
    const p: PayloadV1 = { step: 0, metrics: { train_loss: 0, score: -1e300 }, layers: layers10({ grad_abs_mean: 0 }) };
    expect(rule().check(ctxOf(p))).toEqual([]);
  });

  it("fires on the non_finite flag", () => {
    const findings = rule().check(ctxOf({ step: 2, non_finite: true }));
    expect(findings).toHaveLength(1);
    expect(findings[0]?.rule).toBe("non_finite_flag");
    expect(findings[0]?.evidence).toEqual({ indicator: "non_finite", value: null, threshold: 0 });
  });

  it.each(NON_FINITE)("fires on a %s metric", (_label, v) => {
    const findings = rule().check(ctxOf({ step: 1, metrics: { train_acc: 0.5, train_loss: v } }));
    expect(findings).toHaveLength(1);
    expect(findings[0]?.rule).toBe("non_finite_metric");
    expect(findings[0]?.evidence).toEqual({ indicator: "train_loss", value: null, threshold: 0 });
    expect(findings[0]?.message).toBe("metric train_loss is not finite");
  });

  it("reports all non-finite metrics in one finding, the first as evidence", () => {
    const findings = rule().check(ctxOf({ step: 1, metrics: { val_loss: NaN, acc: 0.3, train_loss: null } }));
    expect(findings).toHaveLength(1);
    expect(findings[0]?.evidence.indicator).toBe("val_loss");
    expect(findings[0]?.message).toBe("metrics val_loss, train_loss are not finite");
  });

  it("ignores the metrics listed in ignore_metrics, and only those", () => {
    const r = rule({ NF: { ignore_metrics: ["val_auc"] } });
    expect(r.check(ctxOf({ step: 1, metrics: { train_loss: 0.4, val_auc: NaN } }))).toEqual([]);
    const findings = r.check(ctxOf({ step: 1, metrics: { train_loss: null, val_auc: NaN } }));
    expect(findings.map((f) => f.rule)).toEqual(["non_finite_metric"]);
    expect(findings[0]?.evidence.indicator).toBe("train_loss");
  });

  describe.each(LAYER_FIELDS)("layer field %s", (field) => {
    it.each(NON_FINITE)("fires when it is %s", (_label, v) => {
      const layers = layers10({ [field]: [0.1, 0.1, 0.1, 0.1, v, 0.1, 0.1, 0.1, 0.1, 0.1] });
      const findings = rule().check(ctxOf({ step: 4, layers }));
      expect(findings).toHaveLength(1);
      expect(findings[0]?.rule).toBe("non_finite_layer");
      expect(findings[0]?.evidence).toEqual({ indicator: field, value: null, threshold: 0, layer: "l4" });
    });
  });

  it("names an unnamed layer by its index and counts the non-finite layer values", () => {
    const findings = rule().check(
      ctxOf({ step: 0, layers: [{ grad_abs_mean: 1e-3 }, { grad_abs_mean: null, weight_abs_mean: Infinity }] }),
    );
    expect(findings).toHaveLength(1);
    expect(findings[0]?.evidence.layer).toBe("layer[1]");
    expect(findings[0]?.message).toBe("grad_abs_mean of layer layer[1] is not finite (2 non-finite layer values in all)");
  });

  it("reports the flag, metric and layer findings together, in that order", () => {
    const p: PayloadV1 = {
      step: 5,
      non_finite: true,
      metrics: { train_loss: NaN },
      layers: layers10({ grad_abs_mean: [null, 1e-3, 1e-3, 1e-3, 1e-3, 1e-3, 1e-3, 1e-3, 1e-3, 1e-3] }),
    };
    expect(rule().check(ctxOf(p)).map((f) => f.rule)).toEqual([
      "non_finite_flag",
      "non_finite_metric",
      "non_finite_layer",
    ]);
  });

  it("does not read seconds (wall time is not a diagnosis input)", () => {
    expect(rule().check(ctxOf({ step: 0, seconds: null, metrics: { train_loss: 1 } }))).toEqual([]);
  });
});

describe("NF in the engine", () => {
  it("stops at the first occurrence, even at step 0 (persistence 1, min_step 0)", () => {
    const engine = makeEngine();
    const v = engine.report("t", { step: 0, metrics: { train_loss: NaN } });
    expect(v.stop).toBe(true);
    expect(v.stopped_at).toBe(0);
    expect(tags(v)).toEqual(["NF:non_finite_metric:stop"]);
    expect(v.symptoms[0]?.count).toBe(1);
    expect(v.symptoms[0]?.persistence).toBe(1);
  });

  it("applies to a payload that carries only metrics", () => {
    const verdicts = feed(makeEngine(), "t", curve([2.3, 1.8, null]));
    expect(verdicts.map((v) => v.stop)).toEqual([false, false, true]);
    expect(tags(verdicts[2]!)).toEqual(["NF:non_finite_metric:stop"]);
  });

  it("applies on every step when max_steps is unknown", () => {
    const engine = makeEngine();
    const payloads = healthyTrial(7, 30, undefined);
    payloads[25] = { ...payloads[25]!, non_finite: true };
    const verdicts = feed(engine, "t", payloads);
    expect(verdicts.findIndex((v) => v.stop)).toBe(25);
    expect(tags(verdicts[25]!)).toEqual(["NF:non_finite_flag:stop"]);
  });

  it("stops a protected trial (NF is not protectable)", () => {
    const engine = makeEngine({ max_steps: 20 });
    fillCohort(engine, 0, [2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    const first = engine.report("best", { step: 0, metrics: { train_loss: 1 } });
    expect(first.protected).toBe(true);
    const v = engine.report("best", { step: 1, metrics: { train_loss: 0.9 }, layers: layers10({ weight_abs_mean: [NaN] }) });
    expect(v.protected).toBe(true);
    expect(v.stop).toBe(true);
    expect(tags(v)).toEqual(["NF:non_finite_layer:stop"]);
  });

  it("is not fired by an ignored metric in the engine either", () => {
    const engine = makeEngine({ rules: { NF: { ignore_metrics: ["val_auc"] } } });
    const v = engine.report("t", { step: 0, metrics: { train_loss: 1, val_auc: null } });
    expect(v.stop).toBe(false);
    expect(v.symptoms).toEqual([]);
  });

  it("never fires when disabled", () => {
    const engine = makeEngine({ rules: { NF: { enabled: false } } });
    const v = engine.report("t", { step: 0, non_finite: true, metrics: { train_loss: NaN } });
    expect(v.stop).toBe(false);
    expect(v.symptoms).toEqual([]);
  });
});
