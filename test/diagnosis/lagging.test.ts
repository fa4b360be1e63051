import { describe, expect, it } from "vitest";
import { DiagnosisEngine } from "../../src/diagnosis/engine.js";
import { Peers } from "../../src/diagnosis/peers.js";
import type { PayloadV1 } from "../../src/diagnosis/types.js";
import { resolveConfig } from "../../src/schema/validate.js";
import { family, onlyRules, tags, type ConfigOverrides } from "../helpers.js";

/** An engine with LAG alone, judged from step 1 among at least 4 peers (small studies for the tests). */
function lagEngine(lag: NonNullable<ConfigOverrides["rules"]>["LAG"] = {}, maxSteps = 20): DiagnosisEngine {
  return new DiagnosisEngine(onlyRules(["LAG"], { max_steps: maxSteps, protection: { enabled: false }, rules: { LAG: { min_step: 1, min_cohort: 4, ...lag } } }));
}

const at = (step: number, val_acc: number, extra: Record<string, number> = {}): PayloadV1 => ({ step, metrics: { val_acc, ...extra } });

/** Peers at steps 0..steps-1 with the given val_acc each. */
function peersReport(engine: DiagnosisEngine, values: readonly number[], steps: number, prefix = "peer"): void {
  for (let step = 0; step < steps; step++) values.forEach((v, i) => engine.report(`${prefix}${i}`, at(step, v)));
}

describe("LAG rule formula", () => {
  it("ships the documented defaults (resolveConfig({}))", () => {
    const o = resolveConfig({}).rules.LAG;
    expect([o.enabled, o.metric, o.direction, o.max_better_share, o.min_cohort, o.min_step, o.persistence, o.protectable]).toEqual([
      false,
      "objective",
      "auto",
      0.5,
      20,
      3,
      2,
      true,
    ]);
    expect(o.stage).toEqual({ start: 0, end: 1 });
  });

  it("fires when more than max_better_share of the peers did strictly better, and needs persistence", () => {
    const engine = lagEngine();
    peersReport(engine, [0.8, 0.85, 0.9, 0.95], 3);
    expect(tags(engine.report("slow", at(0, 0.2)))).toEqual([]); // min_step 1
    const watch = engine.report("slow", at(1, 0.3));
    expect(tags(watch)).toEqual(["LAG:behind_cohort:watch"]);
    expect(family(watch, "LAG")[0]?.evidence).toEqual({ indicator: "share of trials with a better val_acc", value: 1, threshold: 0.5 });
    expect(family(watch, "LAG")[0]?.message).toBe("val_acc 0.3 is behind 100 % of the 4 trials at step 1 (limit 50 %)");
    const stop = engine.report("slow", at(2, 0.4));
    expect(stop.stop).toBe(true);
    expect(stop.reason).toMatch(/^LAG behind_cohort: val_acc 0.4 is behind 100 %/);
  });

  it("does not fire at exactly the share (strict >) and counts ties as not better", () => {
    const engine = lagEngine();
    peersReport(engine, [0.8, 0.85, 0.9, 0.95], 2);
    // 2 of 4 better: share 0.5, not above 0.5
    expect(tags(engine.report("mid", at(1, 0.85)))).toEqual([]);
    // 4 of the 5 peers ("mid" is one now) better: 0.85 twice, 0.9, 0.95; the tie at 0.8 is not
    expect(family(engine.report("tie", at(1, 0.8)), "LAG")[0]?.evidence.value).toBe(0.8);
  });

  it("compares in the configured direction (minimize a loss)", () => {
    const engine = lagEngine({ metric: "val_loss", direction: "minimize" });
    for (let step = 0; step < 2; step++) [0.2, 0.3, 0.4, 0.5].forEach((v, i) => engine.report(`p${i}`, { step, metrics: { val_loss: v } }));
    expect(tags(engine.report("high", { step: 1, metrics: { val_loss: 0.9 } }))).toEqual(["LAG:behind_cohort:watch"]);
    expect(tags(engine.report("low", { step: 1, metrics: { val_loss: 0.1 } }))).toEqual([]);
  });

  it("needs min_cohort peers at the step, and is silent without the metric", () => {
    const engine = lagEngine();
    peersReport(engine, [0.8, 0.85, 0.9], 2);
    expect(tags(engine.report("slow", at(1, 0.1)))).toEqual([]); // 3 peers < 4
    expect(tags(engine.report("other", { step: 1, metrics: { train_loss: 9 } }))).toEqual([]);
  });

  it("keeps trials that stopped or ended before a step among its peers, at their last value", () => {
    // four weak trials leave at step 1 (two stopped by LAG itself, two ended by the host); four strong ones stay
    const engine = lagEngine();
    for (let step = 0; step < 2; step++) {
      [0.9, 0.91, 0.92, 0.93].forEach((v, i) => engine.report(`strong${i}`, at(step, v)));
      [0.1, 0.12, 0.14, 0.16].forEach((v, i) => engine.report(`weak${i}`, at(step, v)));
    }
    engine.end("weak0", "pruned");
    engine.end("weak1", "failed");
    // at step 2 the survivors are strong; 0.905 is behind 3 of 4 of them, but behind 3 of 8 peers with the weak carried forward
    [0.9, 0.91, 0.92, 0.93].forEach((v, i) => engine.report(`strong${i}`, at(2, v)));
    engine.end("weak2", "complete");
    engine.end("weak3", "pruned");
    expect(tags(engine.report("survivor", at(2, 0.905)))).toEqual([]);
    // without carrying forward it would be lagging: the same check on survivors alone
    const survivorsOnly = lagEngine({ min_cohort: 4 });
    [0.9, 0.91, 0.92, 0.93].forEach((v, i) => survivorsOnly.report(`strong${i}`, at(2, v)));
    expect(tags(survivorsOnly.report("survivor", at(2, 0.905)))).toEqual(["LAG:behind_cohort:watch"]);
  });

  it("carries a trial stopped by another rule forward too, and answers the same after a replay", () => {
    const config = onlyRules(["LAG", "NF"], { max_steps: 20, protection: { enabled: false }, rules: { LAG: { min_step: 2, min_cohort: 6 } } });
    const events: [string, PayloadV1][] = [];
    for (let step = 0; step < 4; step++) {
      [0.5, 0.6, 0.7, 0.8, 0.9].forEach((v, i) => events.push([`t${i}`, at(step, v)]));
      events.push(["nan", step === 0 ? at(0, 0.3) : { step, metrics: { val_acc: Number.NaN } }]);
    }
    events.push(["late", at(2, 0.55)]);
    const run = (): string[] => {
      const engine = new DiagnosisEngine(config);
      return events.map(([trial, p]) => {
        try {
          return tags(engine.report(trial, p)).join(",");
        } catch {
          return "refused";
        }
      });
    };
    const first = run();
    // at step 2: 5 peers + "nan" (stopped by NF at step 1, carried at 0.3) = 6; 0.55 is behind 4 of 6 (0.67 > 0.5)
    expect(first.at(-1)).toBe("LAG:behind_cohort:watch");
    expect(run()).toEqual(first);
  });
});

describe("Peers", () => {
  it("counts strictly better values in either direction", () => {
    const peers = new Peers(["m"]);
    for (const v of [1, 2, 2, 3]) peers.add("m", 0, v);
    const view = peers.view("m", 0);
    expect(view?.size).toBe(4);
    expect(view?.better(2, "maximize")).toBe(1);
    expect(view?.better(2, "minimize")).toBe(1);
    expect(view?.better(0, "maximize")).toBe(4);
    expect(view?.better(0, "minimize")).toBe(0);
    expect(peers.view("other", 0)).toBeUndefined();
    expect(peers.tracked).toEqual(["m"]);
  });

  it("folds a departure into the later steps only, once, whenever they are looked at", () => {
    const peers = new Peers(["m"]);
    peers.add("m", 3, 10);
    expect(peers.view("m", 3)?.size).toBe(1);
    peers.depart("m", 3, 0.5); // left after its step 3
    expect(peers.view("m", 3)?.size).toBe(1);
    expect(peers.view("m", 4)?.size).toBe(1);
    expect(peers.view("m", 4)?.size).toBe(1); // not folded twice
    peers.depart("m", 1, 0.7);
    expect(peers.view("m", 1)?.size).toBe(0);
    expect(peers.view("m", 2)?.size).toBe(1);
    expect(peers.view("m", 4)?.size).toBe(2);
    expect(peers.view("m", 4)?.better(0.6, "maximize")).toBe(1);
  });
});
