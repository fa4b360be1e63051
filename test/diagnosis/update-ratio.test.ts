import { describe, expect, it } from "vitest";
import { UpdateRatioRule } from "../../src/diagnosis/update-ratio.js";
import type { PayloadV1 } from "../../src/diagnosis/types.js";
import { ctxOf, feed, fillCohort, layers10, makeEngine, tags } from "../helpers.js";
import { layerCheck, pinnedOptions, ruleOf } from "./rule-fixture.js";

const rule = ruleOf("UWR", UpdateRatioRule);
const check = layerCheck(rule, "update_ratio", 2);

const TEN = (x: number): number[] => Array<number>(10).fill(x);

function withRatio(step: number, u: number, extra: Partial<PayloadV1> = {}): PayloadV1 {
  return { step, layers: layers10({ update_ratio: u }), ...extra };
}

describe("UWR rule formula", () => {
  it("has the documented defaults", () => {
    expect(pinnedOptions("UWR", ["median_max", "median_min", "min_step", "persistence", "protectable", "stage"])).toEqual([1, 1e-7, 1, 2, true, { start: 0, end: 1 }]);
  });

  it.each([1e-3, 5e-2, 0.5, 1e-6])("is silent on a median ratio of %s", (u) => {
    expect(check(TEN(u))).toEqual([]);
  });

  it("fires update_ratio_high when the median ratio exceeds 1", () => {
    const findings = check(TEN(3));
    expect(findings).toHaveLength(1);
    expect(findings[0]?.rule).toBe("update_ratio_high");
    expect(findings[0]?.evidence).toEqual({ indicator: "median(update_ratio)", value: 3, threshold: 1 });
  });

  it("fires update_ratio_low when the median ratio is below 1e-7", () => {
    const findings = check(TEN(1e-9));
    expect(findings).toHaveLength(1);
    expect(findings[0]?.rule).toBe("update_ratio_low");
    expect(findings[0]?.evidence).toEqual({ indicator: "median(update_ratio)", value: 1e-9, threshold: 1e-7 });
  });

  it("fires update_ratio_low on frozen weights (ratio 0)", () => {
    expect(check(TEN(0)).map((f) => f.rule)).toEqual(["update_ratio_low"]);
  });

  it.each([
    ["upper", 1],
    ["lower", 1e-7],
  ])("does not fire at exactly the %s bound", (_label, u) => {
    expect(check(TEN(u))).toEqual([]);
  });

  it("fires just outside the bounds", () => {
    expect(check(TEN(1.000001)).map((f) => f.rule)).toEqual(["update_ratio_high"]);
    expect(check(TEN(0.99e-7)).map((f) => f.rule)).toEqual(["update_ratio_low"]);
  });

  it("uses the median over layers", () => {
    expect(check([10, 10, 10, 10, 0.05, 0.05, 0.05, 0.05, 0.05, 0.05])).toEqual([]);
    expect(check([10, 10, 10, 10, 10, 10, 0.05, 0.05, 0.05, 0.05]).map((f) => f.rule)).toEqual(["update_ratio_high"]);
  });

  it("is silent without layers, with only metrics, or when no layer carries update_ratio", () => {
    expect(rule().check(ctxOf({ step: 2 }))).toEqual([]);
    expect(rule().check(ctxOf({ step: 2, metrics: { train_loss: 1 } }))).toEqual([]);
    expect(rule().check(ctxOf({ step: 2, layers: layers10({ update_ratio: undefined }) }))).toEqual([]);
  });

  it("ignores non-finite ratios", () => {
    expect(check([null, NaN, Infinity, -Infinity])).toEqual([]);
    expect(check([null, 5, NaN, 5, 0.05]).map((f) => f.rule)).toEqual(["update_ratio_high"]);
  });
});

describe("UWR in the engine", () => {
  it("is not checked at step 0 (the move away from initialisation), then needs two detections", () => {
    const verdicts = feed(makeEngine(), "t", [withRatio(0, 5), withRatio(1, 5), withRatio(2, 5)]);
    expect(verdicts.map((v) => tags(v).join(","))).toEqual([
      "",
      "UWR:update_ratio_high:watch",
      "UWR:update_ratio_high:stop",
    ]);
  });

  it("counts high and low detections as one family", () => {
    const verdicts = feed(makeEngine(), "t", [withRatio(1, 5), withRatio(2, 0)]);
    expect(tags(verdicts[1]!)).toEqual(["UWR:update_ratio_low:stop"]);
    expect(verdicts[1]?.symptoms[0]?.count).toBe(2);
  });

  it("resets after a healthy step", () => {
    const verdicts = feed(makeEngine(), "t", [withRatio(1, 5), withRatio(2, 0.05), withRatio(3, 5), withRatio(4, 5)]);
    expect(verdicts.map((v) => v.stop)).toEqual([false, false, false, true]);
  });

  it("applies with max_steps unknown", () => {
    expect(feed(makeEngine(), "t", [withRatio(17, 0), withRatio(18, 0)]).map((v) => v.stop)).toEqual([false, true]);
  });

  it("does not stop a protected trial", () => {
    const engine = makeEngine();
    fillCohort(engine, 1, [2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    const verdicts = feed(engine, "best", [
      withRatio(1, 5, { metrics: { train_loss: 1 } }),
      withRatio(2, 5, { metrics: { train_loss: 0.9 } }),
    ]);
    expect(tags(verdicts[1]!)).toEqual(["UWR:update_ratio_high:protected"]);
    expect(verdicts[1]?.stop).toBe(false);
  });
});
