import { describe, expect, it } from "vitest";
import { DiagnosisEngine } from "../../src/diagnosis/engine.js";
import { SlowConvergenceRule } from "../../src/diagnosis/slow-convergence.js";
import type { PayloadV1 } from "../../src/diagnosis/types.js";
import { ctxFrom, curve, curves, feed, fillCohort, makeEngine, onlyRules, tags } from "../helpers.js";
import { pinnedOptions, ruleOf, type RuleOverrides } from "./rule-fixture.js";

const rule = ruleOf("SC", SlowConvergenceRule);

function check(history: PayloadV1[], maxSteps = 20, overrides: RuleOverrides = {}) {
  return rule(overrides).check(ctxFrom(history, maxSteps));
}

/** The late check is opt-in: the late tests turn it on (and keep any other SC override). */
function checkLate(history: PayloadV1[], maxSteps = 20, sc: NonNullable<RuleOverrides>["SC"] = {}) {
  return check(history, maxSteps, { SC: { late_check: true, ...sc } });
}

/** Smooth for five steps, then swinging between 1 and 2. */
const SWINGING = [2.0, 1.9, 1.8, 1.7, 1.6, 1.0, 2.0, 1.0, 2.0, 1.0, 2.0, 1.0];

describe("SC rule formula", () => {
  it("runs its formula tests on the pre-calibration options (docs/examples/pre-calibration.json; shipped defaults: test/schema/documented-defaults.test.ts)", () => {
    expect(pinnedOptions("SC", ["metric", "val_metric", "early_cv_min", "early_min_points", "early_val_check", "late_min_points", "late_start", "late_check"])).toEqual([
      "train_loss",
      "val_loss",
      1e-4,
      3,
      false,
      6,
      0.5,
      false,
    ]);
    expect(pinnedOptions("SC", ["persistence", "protectable", "min_step", "stage"])).toEqual([2, true, 0, { start: 0, end: 1 }]);
  });

  it("is silent when max_steps is unknown", () => {
    expect(rule().check(ctxFrom(curve([1, 1, 1, 1])))).toEqual([]);
    expect(rule().check(ctxFrom(curve(SWINGING.slice(0, 11))))).toEqual([]);
  });

  describe("early: flat_curve", () => {
    it("fires on a train loss that has not moved over 3 steps", () => {
      const findings = check(curve([1, 1, 1]));
      expect(findings).toHaveLength(1);
      expect(findings[0]?.rule).toBe("flat_curve");
      expect(findings[0]?.evidence).toEqual({ indicator: "cv(train_loss)", value: 0, threshold: 1e-4 });
    });

    it("needs early_min_points values", () => {
      expect(check(curve([1, 1]))).toEqual([]);
      expect(check(curve([1, 1]), 20, { SC: { early_min_points: 2 } }).map((f) => f.rule)).toEqual(["flat_curve"]);
    });

    it("fires below CV 1e-4 and not above", () => {
      expect(check(curve([1, 1.0001, 1])).map((f) => f.rule)).toEqual(["flat_curve"]);
      expect(check(curve([1, 1.001, 1]))).toEqual([]);
      expect(check(curve([2.3, 1.8, 1.4]))).toEqual([]);
    });

    it("does not fire at exactly the threshold (strict <)", () => {
      // CV([1, 1, 3, 3]) is exactly 0.5
      expect(check(curve([1, 1, 3, 3]), 20, { SC: { early_cv_min: 0.5 } })).toEqual([]);
      expect(check(curve([1, 1, 3, 3]), 20, { SC: { early_cv_min: 0.5000001 } }).map((f) => f.rule)).toEqual([
        "flat_curve",
      ]);
    });

    it("skips a curve whose mean is not positive", () => {
      expect(check(curve([0, 0, 0]))).toEqual([]);
      expect(check(curve([-1, -1, -1]))).toEqual([]);
    });

    it("reads the train metric only, unless early_val_check", () => {
      expect(check(curves([2.3, 1.8, 1.4], [1, 1, 1]))).toEqual([]);
      expect(check(curve([0.7, 0.7, 0.7], "loss"), 20, { SC: { metric: "loss" } }).map((f) => f.rule)).toEqual([
        "flat_curve",
      ]);
    });

    it("with early_val_check, also fires on a flat val loss while the train loss falls (nothing learnt)", () => {
      const on = { SC: { early_val_check: true } };
      // a weight-decay term shrinking: train falls, val sits at chance (ln 10)
      const findings = check(curves([6.9, 5.9, 4.9], [2.3026, 2.3026, 2.3025]), 20, on);
      expect(findings.map((f) => f.evidence.indicator)).toEqual(["cv(val_loss)"]);
      expect(findings[0]?.message).toMatch(/^val_loss has not moved/);
      // each curve is judged on its own: both flat gives two findings, a moving val loss none
      expect(check(curves([1, 1, 1], [2, 2, 2]), 20, on).map((f) => f.evidence.indicator)).toEqual(["cv(train_loss)", "cv(val_loss)"]);
      expect(check(curves([2.3, 1.8, 1.4], [2.2, 1.7, 1.3]), 20, on)).toEqual([]);
      // the val curve needs early_min_points values of its own
      expect(check(curves([2.3, 1.8, 1.4], [2, 2]), 20, on)).toEqual([]);
    });

    it("skips non-finite values in the curve", () => {
      expect(check(curve([1, null, 1, NaN]))).toEqual([]); // two finite values
      expect(check(curve([1, null, 1, 1])).map((f) => f.rule)).toEqual(["flat_curve"]);
    });
  });

  describe("late: late_cv_rising", () => {
    it("is off by default (late_check = false): a swinging or a steadily falling late curve passes", () => {
      expect(check(curve(SWINGING.slice(0, 11)))).toEqual([]);
      const steady = Array.from({ length: 12 }, (_, t) => 2 - 0.1 * t); // same spread, smaller mean: higher CV late
      expect(checkLate(curve(steady)).map((f) => f.rule)).toEqual(["late_cv_rising"]);
      expect(check(curve(steady))).toEqual([]);
    });

    it("switches from the early to the late check at floor(0.5 * max_steps)", () => {
      expect(checkLate(curve(SWINGING.slice(0, 10)))).toEqual([]); // step 9: early, the curve moves
      const findings = checkLate(curve(SWINGING.slice(0, 11))); // step 10: late
      expect(findings).toHaveLength(1);
      expect(findings[0]?.rule).toBe("late_cv_rising");
      expect(findings[0]?.evidence.indicator).toBe("cv(train_loss second half)");
      expect(findings[0]?.evidence.value).toBeCloseTo(0.5 / 1.5, 12); // CV of [1,2,1,2,1,2]
      expect(findings[0]?.evidence.threshold).toBeLessThan(0.1); // CV of [2, 1.9, 1.8, 1.7, 1.6]
    });

    it("no longer checks flatness in the late stage", () => {
      expect(checkLate(curve(Array<number>(12).fill(1)))).toEqual([]);
      expect(checkLate(curve(Array<number>(10).fill(1))).map((f) => f.rule)).toEqual(["flat_curve"]);
    });

    it("checks train and val separately", () => {
      // an exponential decay towards 0.1 varies relatively less in its second half
      const smooth = Array.from({ length: 11 }, (_, t) => 2.3 * Math.exp(-0.3 * t) + 0.1);
      expect(checkLate(curves(smooth, SWINGING.slice(0, 11))).map((f) => f.evidence.indicator)).toEqual([
        "cv(val_loss second half)",
      ]);
      expect(checkLate(curves(SWINGING.slice(0, 11), SWINGING.slice(0, 11))).map((f) => f.evidence.indicator)).toEqual([
        "cv(train_loss second half)",
        "cv(val_loss second half)",
      ]);
      expect(checkLate(curves(smooth, smooth))).toEqual([]);
    });

    it("does not fire when both halves vary equally (strict >)", () => {
      const same = [1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 5, 6];
      expect(checkLate(curve(same))).toEqual([]);
      const more = [1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 5, 6.01];
      expect(checkLate(curve(more)).map((f) => f.rule)).toEqual(["late_cv_rising"]);
    });

    it("splits the curve at floor(n / 2)", () => {
      // n = 11, h = 5: first half [1, 1, 1, 1, 1] (CV 0), second [2, 1, 1, 1, 1, 1] (CV > 0)
      expect(checkLate(curve([1, 1, 1, 1, 1, 2, 1, 1, 1, 1, 1])).map((f) => f.rule)).toEqual(["late_cv_rising"]);
      // n = 11 with the jump at index 4: it falls in the first half
      expect(checkLate(curve([1, 1, 1, 1, 2, 1, 1, 1, 1, 1, 1]))).toEqual([]);
    });

    it("needs late_min_points values of the curve", () => {
      const five: PayloadV1[] = [6, 7, 8, 9, 10].map((step, i) => ({ step, metrics: { train_loss: [1, 1, 1, 1, 2][i] ?? 0 } }));
      expect(checkLate(five)).toEqual([]);
      expect(checkLate(five, 20, { late_min_points: 5 }).map((f) => f.rule)).toEqual(["late_cv_rising"]);
    });

    it("skips a half whose mean is not positive", () => {
      expect(checkLate(curve([-1, -1, -1, -1, -1, -1, -1, -3, -1, -3, -1]))).toEqual([]);
    });

    it("applies past max_steps", () => {
      const long = [...Array<number>(15).fill(1), 1.5, 1, 1.5, 1, 1.5, 1, 1.5];
      expect(checkLate(curve(long), 20).map((f) => f.rule)).toEqual(["late_cv_rising"]);
    });

    it("honours late_start", () => {
      const data = curve(SWINGING.slice(0, 11));
      expect(checkLate(data, 20, { late_start: 0.75 })).toEqual([]);
    });
  });
});

describe("SC in the engine", () => {
  it("stops a flat metrics-only trial after two detections", () => {
    const verdicts = feed(makeEngine(), "t", curve([0.9, 0.9, 0.9, 0.9], "train_loss", { max_steps: 20 }));
    expect(verdicts.map((v) => tags(v).join(","))).toEqual(["", "", "SC:flat_curve:watch", "SC:flat_curve:stop"]);
    expect(verdicts[3]?.stopped_at).toBe(3);
  });

  it("is silent when max_steps is unknown", () => {
    const verdicts = feed(makeEngine(), "t", curve(Array<number>(12).fill(0.9)));
    expect(verdicts.every((v) => v.symptoms.length === 0)).toBe(true);
  });

  it("stops on a late rising CV after two detections", () => {
    const engine = new DiagnosisEngine(onlyRules(["SC"], { max_steps: 20, rules: { SC: { late_check: true } } }));
    const verdicts = feed(engine, "t", curve(SWINGING));
    expect(verdicts.slice(9).map((v) => tags(v).join(","))).toEqual([
      "",
      "SC:late_cv_rising:watch",
      "SC:late_cv_rising:stop",
    ]);
  });

  it("does not stop a protected trial", () => {
    const engine = makeEngine({ max_steps: 20 });
    fillCohort(engine, 0, [2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    const verdicts = feed(engine, "best", curve([0.9, 0.9, 0.9, 0.9, 0.9]));
    expect(verdicts[0]?.protected).toBe(true);
    expect(verdicts.map((v) => tags(v).join(","))).toEqual([
      "",
      "",
      "SC:flat_curve:watch",
      "SC:flat_curve:protected",
      "SC:flat_curve:protected",
    ]);
    expect(verdicts.some((v) => v.stop)).toBe(false);
  });
});

/** The shipped early-check forms (docs/symptoms.md#sc): a curve still falling, a lagging validation, a trial ahead of its study. */
describe("SC early check: the forms chosen across tasks", () => {
  const SHIPPED = { early_cv_min: 0.01, early_min_points: 5, early_val_check: true, early_progress_window: 3, early_progress_min: 0.003, early_val_gap: 0.1, early_val_lag_until: 0.4, early_behind_share_min: 0.5, early_min_peers: 10 };
  const early = (train: number[], val: number[], sc: Record<string, unknown> = {}) =>
    rule({ SC: { ...SHIPPED, ...sc } })
      .check(ctxFrom(curves(train, val), 20))
      .map((f) => f.message.split(" ")[0]);

  it("does not call a curve flat while it falls by early_progress_min over early_progress_window steps (a late bloomer)", () => {
    const bloomer = [2.305, 2.302, 2.3, 2.296, 2.29]; // CV 0.002, fell 0.52 % over 3 steps
    const stuck = [2.3026, 2.3025, 2.3026, 2.3025, 2.3024];
    expect(early(bloomer, bloomer)).toEqual([]);
    expect(early(stuck, stuck)).toEqual(["train_loss", "val_loss"]);
    expect(early(bloomer, bloomer, { early_progress_window: 0 })).toEqual(["train_loss", "val_loss"]);
    expect(early(bloomer, bloomer, { early_progress_min: 0.01 })).toEqual(["train_loss", "val_loss"]);
  });

  it("waits for early_min_points values", () => {
    const stuck = [2.3026, 2.3025, 2.3026, 2.3025, 2.3024];
    expect(early(stuck.slice(0, 4), stuck.slice(0, 4))).toEqual([]);
  });

  it("skips the val curve while validation lags training, until floor(early_val_lag_until x max_steps)", () => {
    const train = [2.1, 1.6, 1.3, 1.1, 0.95, 0.9, 0.85, 0.8, 0.75]; // far below the val loss
    const val = [2.301, 2.3, 2.301, 2.302, 2.303, 2.302, 2.301, 2.302, 2.303];
    expect(early(train.slice(0, 8), val.slice(0, 8))).toEqual([]); // step 7 < floor(0.4 x 20) = 8
    expect(early(train, val)).toEqual(["val_loss"]); // step 8: the wait is over
    expect(early(train.slice(0, 8), val.slice(0, 8), { early_val_gap: 1 })).toEqual(["val_loss"]);
  });

  it("does not call a curve flat when fewer than early_behind_share_min of the study's trials at the step are lower", () => {
    const run = (cohort: number[]): string[] => {
      const engine = new DiagnosisEngine(onlyRules(["SC"], { max_steps: 20, protection: { enabled: false }, rules: { SC: { ...SHIPPED, early_val_check: false, persistence: 1 } } }));
      const flat = [2.9, 2.89, 2.89, 2.89, 2.89];
      cohort.forEach((v, i) => feed(engine, `peer${i}`, curve(flat.map(() => v))));
      return feed(engine, "t", curve(flat)).flatMap((v) => tags(v));
    };
    expect(run(Array<number>(10).fill(3.58))).toEqual([]); // ahead of every trial of its study: slow, not stuck
    expect(run(Array<number>(10).fill(1.5))).toEqual(["SC:flat_curve:stop"]); // behind every trial: stuck
    expect(run(Array<number>(9).fill(3.58))).toEqual(["SC:flat_curve:stop"]); // fewer than early_min_peers: the curve alone decides
  });
});
