import { describe, expect, it } from "vitest";
import { DiagnosisEngine } from "../../src/diagnosis/engine.js";
import { EngineInputError } from "../../src/diagnosis/errors.js";
import { SYMPTOM_CODES, type PayloadV1, type Verdict } from "../../src/diagnosis/types.js";
import {
  curve,
  curves,
  feed,
  fillCohort,
  healthyTrial,
  layers10,
  makeConfig,
  makeEngine,
  onlyRules,
  randomStudy,
  runStudy,
  tags,
} from "../helpers.js";

const VANISHING = (step: number, extra: Partial<PayloadV1> = {}): PayloadV1 => ({
  step,
  layers: layers10({ grad_abs_mean: 1e-7 }),
  ...extra,
});

function deepFreeze<T>(x: T): T {
  if (x !== null && typeof x === "object") {
    for (const v of Object.values(x)) deepFreeze(v);
    Object.freeze(x);
  }
  return x;
}

describe("DiagnosisEngine: verdicts", () => {
  it("answers a healthy step with no symptoms and no stop fields", () => {
    const v = makeEngine().report("t1", { step: 0, metrics: { train_loss: 2.3 }, layers: layers10() });
    expect(v).toStrictEqual({ trial: "t1", step: 0, stop: false, protected: false, symptoms: [] });
  });

  it("does not modify the payload", () => {
    const payloads = deepFreeze(healthyTrial(11, 20, 20));
    const verdicts = feed(makeEngine(), "t", payloads);
    expect(verdicts).toHaveLength(20);
  });

  it("reports every family detected at a step, in evaluation order, and stops on the confirmed ones only", () => {
    const engine = makeEngine({ max_steps: 20, rules: { NMG: { enabled: true, window: 2 } } });
    const history = curves([10, 1, 1, 1, 1], [0.5, 0.6, 0.6, 0.5, 0.5]);
    expect(feed(engine, "t", history).some((v) => v.stop)).toBe(false);
    const v = engine.report("t", {
      step: 5,
      metrics: { train_loss: 3, val_loss: 0.6 },
      layers: layers10({
        grad_abs_mean: [0, 2e4, 2e4, 2e4, 2e4, 2e4, 2e4, 2e4, 2e4, 2e4],
        grad_zero_frac: 0.9,
        act_zero_frac: 0.9,
        act_saturated_frac: 0.9,
        update_ratio: 5,
      }),
    });
    expect(tags(v)).toEqual([
      "EG:grad_median_high:stop",
      "DIV:loss_above_best:watch",
      "VG:zero_layer_grad:watch",
      "DR:grad_zero_frac_high:watch",
      "DEAD:dead_units:watch",
      "SAT:saturated_units:watch",
      "UWR:update_ratio_high:watch",
      "OF:val_rising_train_falling:watch",
      "NMG:recent_mean_higher:watch",
      "NMG:recent_mean_higher:watch",
    ]);
    const order = v.symptoms.map((s) => s.code);
    const evaluation = ["NF", "EG", "DIV", "VG", "DR", "DEAD", "SAT", "UWR", "SC", "HO", "OF", "NMG"];
    expect([...order].sort((a, b) => evaluation.indexOf(a) - evaluation.indexOf(b))).toEqual(order);
    expect(v.stop).toBe(true);
    expect(v.stopped_at).toBe(5);
    expect(v.reason).toBe("EG grad_median_high: median gradient magnitude 2.000e+4 exceeds 1.000e+4");
  });

  it("joins every stopping symptom into the reason", () => {
    const v = makeEngine().report("t", { step: 0, layers: [{ grad_abs_mean: 1e12 }, { grad_abs_mean: 1e8 }, { grad_abs_mean: 1e5 }, { grad_abs_mean: 1 }] });
    expect(tags(v)).toEqual(["EG:grad_median_high:stop", "EG:grad_ratio_high:stop"]);
    expect(v.reason?.split("; ").map((r) => r.split(":")[0])).toEqual(["EG grad_median_high", "EG grad_ratio_high"]);
  });

  it("never reports a disabled family", () => {
    const engine = makeEngine({ rules: { EG: { enabled: false } } });
    const v = engine.report("t", { step: 0, layers: layers10({ grad_abs_mean: 1e6 }) });
    expect(v.symptoms).toEqual([]);
    expect(v.stop).toBe(false);
  });

  it("keeps trials apart", () => {
    const engine = makeEngine({ max_steps: 20 });
    engine.report("a", VANISHING(0));
    const b = engine.report("b", VANISHING(1));
    expect(tags(b)).toEqual(["VG:grad_median_low:watch"]);
    expect(tags(engine.report("a", VANISHING(1)))).toEqual(["VG:grad_median_low:stop"]);
  });
});

describe("DiagnosisEngine: persistence streaks", () => {
  it("resets a family's count at a step whose inputs are missing", () => {
    const engine = makeEngine({ max_steps: 20 });
    const verdicts = feed(engine, "t", [VANISHING(0), { step: 1, metrics: { train_loss: 1 } }, VANISHING(2), VANISHING(3)]);
    expect(verdicts.map((v) => tags(v).join(","))).toEqual([
      "VG:grad_median_low:watch",
      "",
      "VG:grad_median_low:watch",
      "VG:grad_median_low:stop",
    ]);
  });

  it("resets the other families' counts at a step skipped after NF", () => {
    const engine = makeEngine({ max_steps: 20, rules: { NF: { persistence: 2 } } });
    const verdicts = feed(engine, "t", [VANISHING(0), VANISHING(1, { non_finite: true }), VANISHING(2), VANISHING(3)]);
    expect(verdicts.map((v) => tags(v).join(","))).toEqual([
      "VG:grad_median_low:watch",
      "NF:non_finite_flag:watch",
      "VG:grad_median_low:watch",
      "VG:grad_median_low:stop",
    ]);
  });

  it("resets a family's count at a step outside its stage", () => {
    const engine = makeEngine({ max_steps: 20, rules: { DR: { stage: { start: 0, end: 0.25 }, min_step: 0 } } });
    const dying = (step: number): PayloadV1 => ({ step, layers: layers10({ grad_zero_frac: 0.9 }) });
    const verdicts = feed(engine, "t", [dying(4), dying(5), dying(6)]);
    expect(verdicts.map((v) => tags(v).join(","))).toEqual(["DR:grad_zero_frac_high:watch", "", ""]);
  });

  it("needs `persistence` consecutive detections when configured higher", () => {
    const engine = makeEngine({ max_steps: 20, rules: { VG: { persistence: 3 } } });
    const verdicts = feed(engine, "t", [VANISHING(0), VANISHING(1), VANISHING(2)]);
    expect(verdicts.map((v) => v.symptoms.map((s) => `${s.action}${s.count}/${s.persistence}`).join())).toEqual([
      "watch1/3",
      "watch2/3",
      "stop3/3",
    ]);
  });
});

describe("DiagnosisEngine: NF", () => {
  it("skips every other rule when NF fires", () => {
    const engine = makeEngine({ max_steps: 20 });
    feed(engine, "t", curve([1, 1, 1]));
    const v = engine.report("t", {
      step: 3,
      metrics: { train_loss: NaN, val_loss: 50 },
      layers: layers10({ grad_abs_mean: [0, 2e4, 2e4, 2e4, 2e4, 2e4, 2e4, 2e4, 2e4, null], update_ratio: 5 }),
    });
    expect(tags(v)).toEqual(["NF:non_finite_metric:stop", "NF:non_finite_layer:stop"]);
    expect(v.stop).toBe(true);
  });

  it("stops a trial whose train loss turns NaN at step 7, at step 7", () => {
    const engine = makeEngine();
    const payloads = healthyTrial(42, 20, 20);
    payloads[7] = { ...payloads[7]!, metrics: { ...payloads[7]!.metrics, train_loss: NaN } };
    const verdicts = feed(engine, "t", payloads);
    expect(verdicts.slice(0, 7).some((v) => v.stop)).toBe(false);
    expect(verdicts[7]?.stop).toBe(true);
    expect(verdicts[7]?.stopped_at).toBe(7);
    expect(tags(verdicts[7]!)).toEqual(["NF:non_finite_metric:stop"]);
    expect(verdicts[7]?.symptoms[0]?.evidence.indicator).toBe("train_loss");
    expect(verdicts.slice(8).every((v) => v.stop && v.stopped_at === 7)).toBe(true);
  });
});

describe("DiagnosisEngine: healthy trials", () => {
  it.each([1, 2, 3, 4, 5, 6, 7, 8])("never stops a realistic healthy trial (seed %s) over 20 steps", (seed) => {
    const verdicts = feed(makeEngine(), `healthy-${seed}`, healthyTrial(seed, 20, 20));
    expect(verdicts.filter((v) => v.stop).map((v) => v.reason)).toEqual([]);
    expect(verdicts.flatMap((v) => tags(v))).toEqual([]);
  });

  it("never stops healthy trials in a study, max_steps from the config", () => {
    const engine = makeEngine({ max_steps: 20 });
    const trials = Array.from({ length: 12 }, (_, i) => healthyTrial(100 + i, 20, undefined));
    for (let step = 0; step < 20; step++) {
      trials.forEach((t, i) => {
        const v = engine.report(`h${i}`, t[step]!);
        expect(v.stop).toBe(false);
      });
    }
    expect(engine.trialSummaries().filter((s) => s.protected).length).toBeGreaterThan(0);
  });
});

describe("DiagnosisEngine: re-delivery and order", () => {
  it("returns the identical verdict object for a re-delivered step", () => {
    const engine = makeEngine({ max_steps: 20 });
    const first = engine.report("t", VANISHING(0));
    const again = engine.report("t", VANISHING(0));
    expect(again).toBe(first);
    // even when the re-delivered payload differs: the stored answer stands
    expect(engine.report("t", { step: 0, metrics: { train_loss: NaN } })).toBe(first);
    expect(engine.history("t")).toHaveLength(1);
  });

  it("does not count a re-delivered detection twice", () => {
    const engine = makeEngine({ max_steps: 20 });
    const w = engine.report("t", VANISHING(0));
    expect(engine.report("t", VANISHING(0))).toBe(w);
    const v = engine.report("t", VANISHING(1));
    expect(v.symptoms[0]?.count).toBe(2);
    expect(tags(v)).toEqual(["VG:grad_median_low:stop"]);
  });

  it("re-delivers an older step after later ones", () => {
    const engine = makeEngine({ max_steps: 20 });
    const verdicts = feed(engine, "t", [VANISHING(0), VANISHING(1), VANISHING(2)]);
    expect(engine.report("t", VANISHING(0))).toBe(verdicts[0]);
    expect(engine.report("t", VANISHING(1))).toBe(verdicts[1]);
  });

  it("throws EngineInputError for an out-of-order step and changes nothing", () => {
    const engine = makeEngine();
    const before = feed(engine, "t", [{ step: 0, max_steps: 20 }, VANISHING(1), { step: 4, layers: layers10() }, VANISHING(5)]);
    expect(tags(before[3]!)).toEqual(["VG:grad_median_low:watch"]);
    const historyBefore = engine.history("t");
    const summariesBefore = engine.trialSummaries();

    expect(() => engine.report("t", { step: 3, max_steps: 4, non_finite: true, layers: layers10() })).toThrow(EngineInputError);
    expect(() => engine.report("t", VANISHING(2))).toThrow(/step 2 of trial t arrives after step 5/);

    expect(engine.history("t")).toEqual(historyBefore);
    expect(engine.trialSummaries()).toEqual(summariesBefore);
    // the streak and max_steps are untouched: the next step confirms the detection of step 5
    const next = engine.report("t", VANISHING(6));
    expect(tags(next)).toEqual(["VG:grad_median_low:stop"]);
    expect(next.symptoms[0]?.count).toBe(2);
  });

  it("does not add a refused payload's value to the cohort", () => {
    const engine = makeEngine();
    fillCohort(engine, 0, [1, 2, 3, 4, 5, 6, 7, 8, 9]);
    engine.report("late", { step: 3, metrics: { train_loss: 1 } });
    expect(() => engine.report("late", { step: 0, metrics: { train_loss: 0.5 } })).toThrow(EngineInputError);
    expect(engine.report("x", { step: 0, metrics: { train_loss: 0.1 } }).protected).toBe(false);
  });

  it.each([
    ["negative", -1],
    ["fractional", 1.5],
    ["NaN", NaN],
    ["infinite", Infinity],
  ])("refuses a %s step without creating the trial", (_label, step) => {
    const engine = makeEngine();
    expect(() => engine.report("t", { step })).toThrow(EngineInputError);
    expect(engine.trialSummaries()).toEqual([]);
    expect(engine.history("t")).toEqual([]);
  });

  it("accepts gaps between steps", () => {
    const engine = makeEngine();
    const verdicts = feed(engine, "t", [{ step: 0 }, { step: 3 }, { step: 9 }]);
    expect(verdicts.map((v) => v.step)).toEqual([0, 3, 9]);
  });
});

describe("DiagnosisEngine: end()", () => {
  it("refuses payloads after the trial ended, keeping its history", () => {
    const engine = makeEngine();
    const verdicts = feed(engine, "t", curve([2, 1.5]));
    engine.end("t", "complete");
    expect(() => engine.report("t", { step: 2, metrics: { train_loss: 1 } })).toThrow(EngineInputError);
    expect(() => engine.report("t", { step: 2 })).toThrow(/already ended \(complete\)/);
    expect(engine.history("t")).toEqual(verdicts);
    expect(engine.trialSummaries()).toEqual([{ trial: "t", last_step: 1, protected: false, ended: "complete" }]);
  });

  it("still answers a re-delivered step after the end with the stored verdict", () => {
    const engine = makeEngine();
    const [v0] = feed(engine, "t", curve([2]));
    engine.end("t", "pruned");
    expect(engine.report("t", { step: 0, metrics: { train_loss: 2 } })).toBe(v0);
  });

  it("keeps the first end state", () => {
    const engine = makeEngine();
    engine.report("t", { step: 0 });
    expect(engine.end("t", "failed")).toBe(true);
    expect(engine.end("t", "complete")).toBe(false);
    expect(engine.trialSummaries()[0]?.ended).toBe("failed");
    expect(engine.trialCount).toBe(1);
  });

  it("refuses to end a trial that reported no step, changing nothing: its first payload is still accepted", () => {
    const engine = makeEngine();
    expect(() => engine.end("ghost", "failed")).toThrow(/unknown trial ghost: it reported no step/);
    expect(engine.knows("ghost")).toBe(false);
    expect(engine.trialCount).toBe(0);
    expect(engine.trialSummaries()).toEqual([]);
    expect(engine.report("ghost", { step: 0 }).step).toBe(0);
    expect(engine.knows("ghost")).toBe(true);
  });
});

describe("DiagnosisEngine: after a stop", () => {
  it("answers stop with stopped_at at every later step, without further diagnosis", () => {
    const engine = makeEngine();
    const verdicts = feed(engine, "t", [
      { step: 0, metrics: { train_loss: 1 } },
      { step: 1, layers: layers10({ grad_abs_mean: 1e5 }), metrics: { train_loss: 1 } },
      { step: 2, metrics: { train_loss: 0.5 }, layers: layers10() },
      { step: 3, metrics: { train_loss: NaN } },
    ]);
    expect(verdicts.map((v) => v.stop)).toEqual([false, true, true, true]);
    expect(verdicts.map((v) => v.stopped_at)).toEqual([undefined, 1, 1, 1]);
    expect(verdicts[2]).toStrictEqual({
      trial: "t",
      step: 2,
      stop: true,
      protected: false,
      symptoms: [],
      reason: `already stopped at step 1: ${verdicts[1]?.reason}`,
      stopped_at: 1,
    });
    expect(verdicts[3]?.symptoms).toEqual([]);
    expect(engine.report("t", { step: 2 })).toBe(verdicts[2]);
    expect(engine.trialSummaries()).toEqual([
      { trial: "t", last_step: 3, protected: false, stopped_at: 1, reason: verdicts[1]?.reason },
    ]);
  });

  it("carries the protected flag of the stopping verdict", () => {
    const engine = makeEngine();
    fillCohort(engine, 0, [2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    const verdicts = feed(engine, "t", [
      { step: 0, metrics: { train_loss: 1 }, layers: layers10({ grad_abs_mean: 1e5 }) },
      { step: 1, metrics: { train_loss: 1 } },
    ]);
    expect(verdicts[0]?.protected).toBe(true);
    expect(verdicts[1]).toMatchObject({ stop: true, protected: true, stopped_at: 0 });
  });
});

describe("DiagnosisEngine: lookups", () => {
  it("has() and verdict() find stored verdicts", () => {
    const engine = makeEngine();
    const verdicts = feed(engine, "t", curve([3, 2, 1]));
    expect(engine.has("t", 1)).toBe(true);
    expect(engine.has("t", 3)).toBe(false);
    expect(engine.has("nobody", 0)).toBe(false);
    expect(engine.verdict("t", 1)).toBe(verdicts[1]);
    expect(engine.verdict("t")).toBe(verdicts[2]);
    expect(engine.verdict("t", 7)).toBeUndefined();
    expect(engine.verdict("nobody")).toBeUndefined();
  });
});

describe("DiagnosisEngine: history and summaries", () => {
  it("lists a trial's verdicts in step order and nothing for an unknown trial", () => {
    const engine = makeEngine();
    const verdicts = feed(engine, "t", curve([3, 2, 1]));
    expect(engine.history("t")).toEqual(verdicts);
    expect(engine.history("t").map((v) => v.step)).toEqual([0, 1, 2]);
    expect(engine.history("nobody")).toEqual([]);
  });
});

describe("DiagnosisEngine: determinism", () => {
  const events = randomStudy(20240825, 200, 20);

  it("gives deep-equal verdicts for the same stream fed to two engines", () => {
    const a = runStudy(new DiagnosisEngine(makeConfig()), events);
    const b = runStudy(new DiagnosisEngine(makeConfig()), events);
    expect(a.length).toBe(events.filter((e) => "payload" in e).length);
    expect(b).toStrictEqual(a);
  });

  it("the stream exercises stops, protection and many families", () => {
    // with SC's opt-in late check on, so that every family can show up
    const verdicts: Verdict[] = runStudy(new DiagnosisEngine(makeConfig({ rules: { SC: { late_check: true } } })), events);
    const stopped = new Set(verdicts.filter((v) => v.stop).map((v) => v.trial));
    const codes = new Set(verdicts.flatMap((v) => v.symptoms.map((s) => s.code)));
    expect(stopped.size).toBeGreaterThan(50);
    expect(stopped.size).toBeLessThan(200);
    expect(verdicts.some((v) => v.protected)).toBe(true);
    expect(verdicts.some((v) => v.symptoms.some((s) => s.action === "watch"))).toBe(true);
    for (const code of ["NF", "EG", "DIV", "VG", "DR", "DEAD", "SC", "HO", "OF"] as const) {
      expect(codes.has(code), code).toBe(true);
    }
    expect([...codes].every((c) => SYMPTOM_CODES.includes(c))).toBe(true);
  });

  it("the same seed gives the same stream, another seed another", () => {
    expect(randomStudy(20240825, 200, 20)).toStrictEqual(events);
    expect(randomStudy(7, 200, 20)).not.toStrictEqual(events);
  });
});

describe("DiagnosisEngine: the last planned step", () => {
  // DIV: train loss above 2x its best, confirmed at the second step in a row (persistence 2)
  const diverging = [1, 0.5, 0.5, 0.5, 2, 2];
  const run = (maxSteps: number, values: PayloadV1["metrics"][] = diverging.map((v) => ({ train_loss: v }))) =>
    feed(new DiagnosisEngine(onlyRules(["DIV", "NF"], { max_steps: maxSteps })), "t", values.map((metrics, step) => ({ step, metrics })));

  it("reports a family confirmed at max_steps - 1 as last_step and does not stop: the training is done", () => {
    const last = run(6)[5] as Verdict;
    expect(last.stop).toBe(false);
    expect(last.symptoms.map((s) => `${s.code}:${s.action}`)).toEqual(["DIV:last_step"]);
    expect(last.reason).toBeUndefined();
  });

  it("stops on the same curve when the confirmation comes before the last planned step, or past it", () => {
    expect(run(7)[5]?.stopped_at).toBe(5);
    expect(run(5)[5]?.stopped_at).toBe(5); // step 5 of a 5-step plan: past it
  });

  it("still stops on NF at the last planned step, so that the host records the trial as broken", () => {
    const values = [{ train_loss: 1 }, { train_loss: 0.9 }, { train_loss: null }];
    const verdicts = run(3, values);
    expect(verdicts[2]?.stop).toBe(true);
    expect(verdicts[2]?.symptoms.map((s) => `${s.code}:${s.action}`)).toEqual(["NF:stop"]);
  });
});
