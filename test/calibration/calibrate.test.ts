/** The calibration search on synthetic traces (test/calibration/synthetic.ts). */
import { describe, expect, it } from "vitest";
import { calibrate, configDiff, falseKillRate, prepare, simulateStudy, splitTrials } from "../../src/calibration/index.js";
import { defaultConfig, resolveConfig } from "../../src/schema/validate.js";
import { makeConfig } from "../helpers.js";
import { trials, type Kind, kinds } from "./synthetic.js";

describe("calibrate", () => {
  // the rules before calibration (test/helpers.ts): DIV at factor 2 false-kills the spiky top trials
  const defaults = makeConfig();
  const result = calibrate(trials(), defaults, { budget: 0.02 });

  it("starts from the pre-calibration config that false-kills the spiky top trials through DIV", () => {
    expect(result.calibration.before.topQuartileStopped).toBeGreaterThanOrEqual(8);
    expect(falseKillRate(result.calibration.before)).toBeGreaterThan(0.02);
  });

  it("loosens or disables DIV until no top-quartile trial is stopped on the calibration split", () => {
    const div = result.config.rules.DIV;
    const loosened = !div.enabled || div.persistence > defaults.rules.DIV.persistence || div.factor > 2.5;
    expect(loosened).toBe(true);
    expect(result.calibration.after.topQuartileStopped).toBe(0);
    const decision = result.decisions.find((d) => d.family === "DIV" && d.change !== "");
    expect(decision?.before.topQuartileStopped).toBeGreaterThan(0);
    expect(decision?.after.topQuartileStopped).toBe(0);
  });

  it("keeps SC, the rule that catches only hopeless trials, and catches every hopeless trial with it", () => {
    expect(result.config.rules.SC.enabled).toBe(true);
    expect(result.calibration.after.hopelessCaught).toBe(result.calibration.after.hopeless);
    expect(result.calibration.after.hopelessEpochsSaved).toBeGreaterThanOrEqual(result.calibration.before.hopelessEpochsSaved);
    // the evaluation split agrees here (same kinds of trials)
    expect(result.evaluation.after.topQuartileStopped).toBe(0);
  });

  it("never lets the evaluation split change the choice: other odd trials, same config and decisions", () => {
    const odd: Kind[] = ["flat", "spiky", "normal"];
    const other = trials((i) => (i % 2 === 0 ? (kinds()[i] as Kind) : (odd[i % 3] as Kind)));
    const again = calibrate(other, defaults, { budget: 0.02 });
    expect(again.config).toEqual(result.config);
    expect(again.decisions).toEqual(result.decisions);
    expect(again.calibration).toEqual(result.calibration);
    expect(again.evaluation).not.toEqual(result.evaluation);
  });

  it("writes only what differs from the defaults, and that resolves to the chosen config", () => {
    const diff = configDiff(result.config, defaultConfig());
    expect(Object.keys(diff)).toEqual(["rules"]);
    expect(resolveConfig(diff)).toEqual(result.config);
    expect(configDiff(defaultConfig(), defaultConfig())).toEqual({});
    // the same options in another key order differ in text, not in content
    const reordered = defaultConfig();
    reordered.rules.DIV = Object.fromEntries(Object.entries(reordered.rules.DIV).reverse()) as typeof reordered.rules.DIV;
    expect(configDiff(reordered, defaultConfig())).toEqual({});
  });

  it("with a budget of 1 may stop anything, and never saves fewer hopeless epochs than where it started", () => {
    const loose = calibrate(trials(), defaults, { budget: 1, passes: 1 });
    expect(loose.calibration.after.hopelessEpochsSaved).toBeGreaterThanOrEqual(loose.calibration.before.hopelessEpochsSaved);
  });
});

describe("split and simulated study", () => {
  it("splits by trial index: even calibrate, odd evaluate, in index order", () => {
    const s = splitTrials([...trials()].reverse());
    expect(s.calibration.map((t) => t.index)).toEqual(Array.from({ length: 32 }, (_, i) => 2 * i));
    expect(s.evaluation.map((t) => t.index)).toEqual(Array.from({ length: 32 }, (_, i) => 2 * i + 1));
  });

  it("counts outcomes from val_acc: non-finite and failed trials are hopeless, the top quartile is the best 25 %", () => {
    const list = trials().slice(0, 8);
    const failed = { ...list[4]!, status: "error" as const };
    const split = prepare([...list.slice(0, 4), failed, ...list.slice(5)]);
    expect(split.outcomes.map((o) => o.hopeless)).toEqual([false, false, true, true, true, false, false, false]);
    expect(split.outcomes.filter((o) => o.topQuartile).length).toBe(3); // sorted[floor(0.75 * 7)] = sorted[5]
  });

  it("stops a trial at its first stop and counts the epochs it did not run", () => {
    const split = prepare(splitTrials(trials()).calibration);
    const f = simulateStudy(defaultConfig(), split);
    expect(f.epochs).toBe(32 * 12);
    const saved = f.stoppedAt.reduce<number>((sum, s) => sum + (s === undefined ? 0 : 12 - (s + 1)), 0);
    expect(f.epochsSaved).toBe(saved);
    expect(f.hopelessEpochsSaved + f.otherEpochsSaved).toBe(saved);
    const off = resolveConfig({ rules: Object.fromEntries(Object.keys(defaultConfig().rules).map((k) => [k, { enabled: false }])) });
    expect(simulateStudy(off, split).epochsSaved).toBe(0);
  });
});
