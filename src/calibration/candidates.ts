/**
 * The search grid of each rule family: a few settings of its main threshold(s) (each a
 * step looser or stricter than the default), its persistence and its protectable flag,
 * plus "disabled". NF is not tuned: a non-finite loss or gradient is never a false alarm
 * worth trading, and the trial has nothing left to gain.
 */
import type { RulesConfig, RuleOptions, SymptomCode } from "../diagnosis/types.js";

/** A change to one family's options (merged over its current options). */
export type RulePatch = Partial<RuleOptions> & Record<string, unknown>;

/** Families in the order coordinate descent visits them (the engine's order, NF left out). */
export const TUNED_FAMILIES: readonly Exclude<SymptomCode, "NF">[] = ["EG", "DIV", "VG", "DR", "DEAD", "SAT", "UWR", "SC", "HO", "OF", "NMG", "LAG", "PROG"];

/** Main threshold settings per family, looser and stricter than the defaults. */
const THRESHOLDS: Record<Exclude<SymptomCode, "NF">, RulePatch[]> = {
  EG: [
    { grad_median_max: 1e3, ratio_median_max: 1e2 },
    { grad_median_max: 1e4, ratio_median_max: 1e3 },
    { grad_median_max: 1e5, ratio_median_max: 1e4 },
    { grad_median_max: 1e6, ratio_median_max: 1e5 },
  ],
  DIV: [{ factor: 1.5 }, { factor: 2 }, { factor: 3 }, { factor: 5 }],
  VG: [
    { grad_median_min: 1e-4, ratio_median_min: 1e-3 },
    { grad_median_min: 1e-5, ratio_median_min: 1e-4 },
    { grad_median_min: 1e-6, ratio_median_min: 1e-5 },
    { grad_median_min: 1e-7, ratio_median_min: 1e-6 },
  ],
  DR: [{ zero_frac_median_max: 0.3 }, { zero_frac_median_max: 0.5 }, { zero_frac_median_max: 0.7 }, { zero_frac_median_max: 0.9 }],
  DEAD: [{ dead_frac_median_max: 0.5 }, { dead_frac_median_max: 0.7 }, { dead_frac_median_max: 0.85 }, { dead_frac_median_max: 0.95 }],
  SAT: [
    { saturated_frac_median_max: 0.3 },
    { saturated_frac_median_max: 0.5 },
    { saturated_frac_median_max: 0.7 },
    { saturated_frac_median_max: 0.9 },
  ],
  UWR: [
    { median_max: 0.5, median_min: 1e-6 },
    { median_max: 1, median_min: 1e-7 },
    { median_max: 2, median_min: 1e-8 },
    { median_max: 5, median_min: 1e-9 },
  ],
  // the early flat-curve check on the train loss alone, and on the val loss too
  SC: [1e-2, 1e-3, 1e-4, 1e-5].flatMap((early_cv_min) => [false, true].map((early_val_check) => ({ early_cv_min, early_val_check }))),
  HO: [{ cv_min: 0.1 }, { cv_min: 0.2 }, { cv_min: 0.4 }, { cv_min: 0.8 }],
  OF: [{ rise_ratio: 1.02 }, { rise_ratio: 1.05 }, { rise_ratio: 1.1 }, { rise_ratio: 1.2 }],
  NMG: [{ window: 4 }, { window: 6 }, { window: 8 }, { window: 10 }],
  LAG: [0.3, 0.4, 0.5, 0.6].flatMap((max_better_share) => [2, 3].map((min_step) => ({ max_better_share, min_step }))),
  PROG: [0, 0.02, 0.05].flatMap((margin) => [2, 3].map((min_step) => ({ margin, min_step }))),
};

const PERSISTENCE = [1, 2, 3];
const PROTECTABLE = [false, true];

/** Every candidate patch of a family: thresholds x persistence x protectable, enabled; then disabled. */
export function familyCandidates(code: Exclude<SymptomCode, "NF">): RulePatch[] {
  const out: RulePatch[] = [];
  for (const t of THRESHOLDS[code]) {
    for (const persistence of PERSISTENCE) {
      for (const protectable of PROTECTABLE) out.push({ ...t, persistence, protectable, enabled: true });
    }
  }
  out.push({ enabled: false });
  return out;
}

/** The rules with one family's options patched (a new object; the input is not modified). */
export function patchRules(rules: RulesConfig, code: SymptomCode, patch: RulePatch): RulesConfig {
  return { ...rules, [code]: { ...rules[code], ...patch } };
}

/** The patch's fields that differ from the family's options, as "key=value" text. */
export function describePatch(before: object, after: object): string {
  const b = before as Record<string, unknown>;
  const a = after as Record<string, unknown>;
  const parts: string[] = [];
  for (const key of Object.keys(a)) {
    if (JSON.stringify(a[key]) !== JSON.stringify(b[key])) parts.push(`${key} ${JSON.stringify(b[key])}→${JSON.stringify(a[key])}`);
  }
  return parts.join(", ");
}
