/** The study's objective (src/diagnosis/objective.ts): its resolution per payload, and LAG and protection in loss-only studies. */
import { describe, expect, it } from "vitest";
import { DiagnosisEngine } from "../../src/diagnosis/engine.js";
import { describeObjective, inferDirection, objectiveCandidates, objectiveValue } from "../../src/diagnosis/objective.js";
import type { PayloadV1 } from "../../src/diagnosis/types.js";
import { resolveConfig, ValidationError } from "../../src/schema/validate.js";
import { family, onlyRules, tags } from "../helpers.js";

const AUTO = { metric: "auto", direction: "auto" } as const;

describe("objectiveValue", () => {
  it.each([
    [{ val_acc: 0.9, val_loss: 0.3, train_loss: 0.2 }, "val_acc", "maximize", undefined],
    [{ val_loss: 0.3, train_loss: 0.2 }, "val_loss", "minimize", "no val_acc in the payload"],
    [{ train_loss: 0.2 }, "train_loss", "minimize", "no val_acc or val_loss in the payload"],
    [{ val_acc: null, val_loss: 0.3 }, "val_loss", "minimize", "no val_acc in the payload"],
  ] as const)("auto: %j is judged by %s (%s)", (metrics, metric, direction, fallback) => {
    const v = objectiveValue(objectiveCandidates(AUTO), { step: 0, metrics });
    expect(v).toEqual({ metric, direction, value: metrics[metric as keyof typeof metrics], ...(fallback ? { fallback } : {}) });
  });

  it("with only a direction declared (as the hosts declare it), tries the built-in metrics of that direction first", () => {
    const min = objectiveCandidates({ metric: "auto", direction: "minimize" });
    expect(min.map((c) => c.metric)).toEqual(["val_loss", "train_loss", "val_acc"]);
    expect(objectiveValue(min, { step: 0, metrics: { val_acc: 0.9, val_loss: 0.3 } })).toEqual({ metric: "val_loss", direction: "minimize", value: 0.3 });
    expect(objectiveCandidates({ metric: "auto", direction: "maximize" }).map((c) => c.metric)).toEqual(["val_acc", "val_loss", "train_loss"]);
  });

  it("is undefined when no candidate has a finite value", () => {
    expect(objectiveValue(objectiveCandidates(AUTO), { step: 0, metrics: { val_acc: null, other: 1 } })).toBeUndefined();
    expect(objectiveValue(objectiveCandidates(AUTO), { step: 0 })).toBeUndefined();
  });

  it("tries a declared metric first, in the direction its name implies, then the built-in ones", () => {
    const candidates = objectiveCandidates({ metric: "val_f1", direction: "auto" });
    expect(candidates.map((c) => `${c.metric}:${c.direction}`)).toEqual(["val_f1:maximize", "val_acc:maximize", "val_loss:minimize", "train_loss:minimize"]);
    expect(objectiveValue(candidates, { step: 0, metrics: { val_f1: 0.7, val_acc: 0.9 } })).toEqual({ metric: "val_f1", direction: "maximize", value: 0.7 });
    const missing = objectiveValue(candidates, { step: 0, metrics: { val_loss: 0.4 } });
    expect(missing?.fallback).toBe("no val_f1 or val_acc in the payload");
    expect(describeObjective(missing!)).toBe("val_loss (objective fallback: no val_f1 or val_acc in the payload)");
    expect(objectiveCandidates({ metric: "val_loss", direction: "auto" }).map((c) => c.metric)).toEqual(["val_loss", "val_acc", "train_loss"]);
    expect(objectiveCandidates({ metric: "reward", direction: "minimize" })[0]).toEqual({ metric: "reward", direction: "minimize" });
  });

  it.each([
    ["val_loss", "minimize"],
    ["test_error", "minimize"],
    ["rmse", "minimize"],
    ["perplexity", "minimize"],
    ["val_accuracy", "maximize"],
    ["roc_auc", "maximize"],
    ["f1", "maximize"],
    ["reward", undefined],
  ] as const)("infers the direction of %s: %s", (metric, direction) => {
    expect(inferDirection(metric)).toBe(direction);
  });

  it("a declared metric whose name gives no direction needs one, in objective and in LAG", () => {
    expect(() => resolveConfig({ objective: { metric: "reward" } })).toThrow(ValidationError);
    expect(() => resolveConfig({ objective: { metric: "reward" } })).toThrow(/config\.objective\.direction.*"reward" does not say which/);
    expect(resolveConfig({ objective: { metric: "reward", direction: "maximize" } }).objective).toEqual({ metric: "reward", direction: "maximize" });
    expect(() => resolveConfig({ rules: { LAG: { metric: "reward" } } })).toThrow(/config\.rules\.LAG\.direction/);
    expect(resolveConfig({}).objective).toEqual({ metric: "auto", direction: "auto" });
  });
});

/** An engine with LAG alone, from step 1 among at least 4 peers. */
function lagEngine(config: Record<string, unknown> = {}): DiagnosisEngine {
  return new DiagnosisEngine(onlyRules(["LAG"], { max_steps: 20, protection: { enabled: false }, rules: { LAG: { min_step: 1, min_cohort: 4 } }, ...config }));
}

const lossOnly = (step: number, val_loss: number): PayloadV1 => ({ step, metrics: { train_loss: val_loss * 0.9, val_loss } });

describe("LAG in a loss-only study (no val_acc in any payload)", () => {
  it.each([
    ["minimize", 0.9, 0.1],
    ["maximize", 0.1, 0.9],
  ] as const)("judges by val_loss, minimized, and says so in the evidence (a %s objective would be declared)", (direction, worse, better) => {
    const engine = direction === "minimize" ? lagEngine() : lagEngine({ objective: { metric: "val_score", direction } });
    const report = (trial: string, step: number, v: number): PayloadV1 =>
      direction === "minimize" ? lossOnly(step, v) : { step, metrics: { val_score: v } };
    const peers = direction === "minimize" ? [0.2, 0.3, 0.4, 0.5] : [0.8, 0.7, 0.6, 0.5];
    for (let step = 0; step < 2; step++) peers.forEach((v, i) => engine.report(`p${i}`, report(`p${i}`, step, v)));
    engine.report("slow", report("slow", 0, worse));
    const watch = engine.report("slow", report("slow", 1, worse));
    expect(tags(watch)).toEqual(["LAG:behind_cohort:watch"]);
    const evidence = family(watch, "LAG")[0]?.evidence;
    const name = direction === "minimize" ? "val_loss (objective fallback: no val_acc in the payload)" : "val_score";
    expect(evidence).toEqual({ indicator: `share of trials with a better ${name}`, value: 1, threshold: 0.5 });
    engine.report("good", report("good", 0, better));
    expect(tags(engine.report("good", report("good", 1, better)))).toEqual([]);
  });

  it("falls back to train_loss when the payloads carry no val_loss either", () => {
    const engine = lagEngine();
    for (let step = 0; step < 2; step++) [0.2, 0.3, 0.4, 0.5].forEach((v, i) => engine.report(`p${i}`, { step, metrics: { train_loss: v } }));
    const v = engine.report("slow", { step: 1, metrics: { train_loss: 2 } });
    expect(family(v, "LAG")[0]?.message).toBe("train_loss (objective fallback: no val_acc or val_loss in the payload) 2 is behind 100 % of the 4 trials at step 1 (limit 50 %)");
  });

  it("compares a payload only with peers of the same metric: val_acc reporters and loss-only reporters do not mix", () => {
    const engine = lagEngine();
    for (let step = 0; step < 2; step++) [0.8, 0.85, 0.9, 0.95].forEach((v, i) => engine.report(`acc${i}`, { step, metrics: { val_acc: v, val_loss: 5 } }));
    // 4 val_loss peers exist (all 5.0); a loss-only trial at 0.3 is ahead of them
    expect(tags(engine.report("lossy", lossOnly(1, 0.3)))).toEqual([]);
    expect(family(engine.report("acc-low", { step: 1, metrics: { val_acc: 0.1, val_loss: 0.1 } }), "LAG")[0]?.evidence.indicator).toBe("share of trials with a better val_acc");
  });

  it("with a named LAG metric, keeps to it (no fallback): a payload without it is not judged", () => {
    const engine = lagEngine({ rules: { LAG: { min_step: 1, min_cohort: 4, metric: "val_acc", direction: "maximize" } } });
    for (let step = 0; step < 2; step++) [0.2, 0.3, 0.4, 0.5].forEach((v, i) => engine.report(`p${i}`, lossOnly(step, v)));
    expect(tags(engine.report("slow", lossOnly(1, 0.9)))).toEqual([]);
  });
});
