/**
 * The progress guard (src/diagnosis/rule.ts, docs/symptoms.md#progress-guard) that VG, UWR and DEAD share: a
 * gradient, update or dead-unit symptom holds only while the train loss fell by less than progress_min over the last
 * progress_window steps.
 */
import { describe, expect, it } from "vitest";
import type { SymptomRule } from "../../src/diagnosis/rule.js";
import { DeadUnitRule } from "../../src/diagnosis/dead-units.js";
import { UpdateRatioRule } from "../../src/diagnosis/update-ratio.js";
import { VanishingGradientRule } from "../../src/diagnosis/vanishing-gradient.js";
import type { PayloadV1 } from "../../src/diagnosis/types.js";
import { relativeFall } from "../../src/diagnosis/stats.js";
import { ctxFrom, layers10, makeConfig, type ConfigOverrides } from "../helpers.js";

const GUARD = { progress_window: 2, progress_min: 1e-3 };

/** Each guarded family with the layers that trip it and the sub-rule it reports. */
const FAMILIES = [
  {
    code: "VG",
    make: (o: ConfigOverrides["rules"]) => new VanishingGradientRule(makeConfig({ rules: o }).rules.VG),
    layers: () => layers10({ grad_abs_mean: 1e-7 }),
    rule: "grad_median_low",
  },
  {
    code: "UWR",
    make: (o: ConfigOverrides["rules"]) => new UpdateRatioRule(makeConfig({ rules: o }).rules.UWR),
    layers: () => layers10({ update_ratio: 5 }),
    rule: "update_ratio_high",
  },
  {
    code: "DEAD",
    make: (o: ConfigOverrides["rules"]) => new DeadUnitRule(makeConfig({ rules: o }).rules.DEAD),
    layers: () => layers10({ act_zero_frac: 0.9 }),
    rule: "dead_units",
  },
] as const;

/** One payload per train loss, every one with the tripping layers. */
function history(family: (typeof FAMILIES)[number], losses: (number | undefined)[]): PayloadV1[] {
  return losses.map((loss, step) => ({ step, layers: family.layers(), ...(loss === undefined ? {} : { metrics: { train_loss: loss } }) }));
}

function rules(family: (typeof FAMILIES)[number], guard: Record<string, unknown> = GUARD): SymptomRule {
  return family.make({ [family.code]: guard } as ConfigOverrides["rules"]);
}

describe.each(FAMILIES)("the progress guard of $code", (family) => {
  const findings = (losses: (number | undefined)[], guard?: Record<string, unknown>): string[] =>
    rules(family, guard)
      .check(ctxFrom(history(family, losses), 20))
      .map((f) => f.rule);

  it("lets the symptom hold while the train loss is flat or rising", () => {
    expect(findings([2.3, 2.3, 2.3])).toEqual([family.rule]);
    expect(findings([2.3, 2.5, 3.0])).toEqual([family.rule]);
    expect(findings([2.3, 2.3, 2.2985])).toEqual([family.rule]); // fell 0.07 % < 0.1 %
  });

  it("holds the symptom back while the train loss falls by progress_min or more over progress_window steps", () => {
    expect(findings([2.3, 2.0, 1.7])).toEqual([]);
    expect(findings([2.3, 2.3, 2.297])).toEqual([]); // fell 0.13 %
    expect(findings([2.3, 2.3, 2.297], { ...GUARD, progress_min: 0.01 })).toEqual([family.rule]);
    expect(findings([3.0, 2.3, 2.3, 2.3], { ...GUARD, progress_window: 3 })).toEqual([]); // the fall 3 steps back counts
  });

  it("waits until the train loss has progress_window + 1 values", () => {
    expect(findings([2.3])).toEqual([]);
    expect(findings([2.3, 2.3])).toEqual([]);
    expect(findings([2.3], { ...GUARD, progress_window: 0 })).toEqual([family.rule]); // 0: the guard is off
  });

  it("does not apply in a study whose payloads carry no train loss", () => {
    expect(findings([undefined])).toEqual([family.rule]);
  });

  it("says in the message how little the loss fell", () => {
    const [finding] = rules(family).check(ctxFrom(history(family, [2.3, 2.3, 2.3]), 20));
    expect(finding?.message).toContain("while train_loss fell 0 % over 2 steps (progress from 0.1 %)");
  });
});

describe("DEAD without the guard when (almost) every unit is dead", () => {
  const dead = (share: number, losses: number[], options: Record<string, unknown> = {}): string[] =>
    new DeadUnitRule(makeConfig({ rules: { DEAD: { ...GUARD, ...options } } }).rules.DEAD)
      .check(ctxFrom(losses.map((loss, step) => ({ step, layers: layers10({ act_zero_frac: share }), metrics: { train_loss: loss } })), 20))
      .map((f) => f.rule);

  it("reads a fall as noise from unguarded_from on (a dead MLP's 12.41, 13.63, 13.63, 13.23)", () => {
    const noisy = [12.41, 13.63, 13.63, 13.23];
    expect(dead(0.8, noisy)).toEqual([]); // guarded: fell 2.9 % over 2 steps
    expect(dead(1, noisy)).toEqual(["dead_units"]);
    expect(dead(0.96, [12.41])).toEqual(["dead_units"]); // no wait for three losses either
    expect(dead(0.99, noisy, { unguarded_from: 1 })).toEqual([]);
  });
});

describe("relativeFall", () => {
  it("is the fall over the window relative to where the curve was, negative when it rose", () => {
    expect(relativeFall([2, 1.5, 1], 2)).toBe(0.5);
    expect(relativeFall([1, 1, 2], 2)).toBe(-1);
    expect(relativeFall([4, 3, 2, 1], 1)).toBe(0.5);
  });

  it("is undefined for a short curve, a window below 1, or a start at 0", () => {
    expect(relativeFall([1, 1], 2)).toBeUndefined();
    expect(relativeFall([1, 1, 1], 0)).toBeUndefined();
    expect(relativeFall([0, 1, 1], 2)).toBeUndefined();
  });
});
