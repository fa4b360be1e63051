/**
 * The set-up every rule test shares: a rule family built on the pinned pre-calibration options
 * (helpers.makeConfig) with overrides, checks of one step (a layer field, a metric curve),
 * the options a test pins, and the engine mechanics that the layer-statistic families (DEAD,
 * SAT, DR) share as one parametrized table (test/diagnosis/layer-families.test.ts).
 */
import type { LayerField } from "../../src/diagnosis/rule.js";
import type { Finding } from "../../src/diagnosis/rule.js";
import type { Measured, PayloadV1, RulesConfig } from "../../src/diagnosis/types.js";
import { ctxFrom, ctxOf, curve, layersWith, makeConfig, type ConfigOverrides } from "../helpers.js";

export type RuleOverrides = ConfigOverrides["rules"];

/** A family whose rule is built from its options alone (every family but LAG and PROG, which also take the objective). */
export type RuleClass<C extends keyof RulesConfig, R> = new (options: RulesConfig[C]) => R;

/** `rule(overrides)`: the family's rule on the pinned options, the overrides over them. */
export function ruleOf<C extends keyof RulesConfig, R>(code: C, Rule: RuleClass<C, R>): (overrides?: RuleOverrides) => R {
  return (overrides = {}) => new Rule(makeConfig({ rules: overrides }).rules[code]);
}

interface Checks {
  check(ctx: ReturnType<typeof ctxOf>): Finding[];
}

/** `check(values, overrides)`: the findings at `step` on layers that carry only `field` (one value per layer, input side first). */
export function layerCheck(rule: (overrides?: RuleOverrides) => Checks, field: LayerField, step: number, maxSteps?: number) {
  return (values: readonly Measured[], overrides: RuleOverrides = {}): Finding[] =>
    rule(overrides).check(ctxOf({ step, layers: layersWith(field, values) }, maxSteps));
}

/** `check(values, overrides, metric)`: the findings at the last step of a metric curve (one payload per value). */
export function curveCheck(rule: (overrides?: RuleOverrides) => Checks) {
  return (values: readonly Measured[], overrides: RuleOverrides = {}, metric = "train_loss"): Finding[] => rule(overrides).check(ctxFrom(curve(values, metric)));
}

/** The pinned options of a family named in `keys`, in that order (what a test's first case pins). */
export function pinnedOptions<C extends keyof RulesConfig>(code: C, keys: readonly (keyof RulesConfig[C])[]): unknown[] {
  const options = makeConfig().rules[code];
  return keys.map((k) => options[k]);
}

/** One row of the layer-statistic families' table: what a broken step looks like and when the family starts. */
export interface LayerFamilyRow {
  code: "DEAD" | "SAT" | "DR";
  /** The finding's rule name. */
  finding: string;
  /** A payload at `step` on which the family fires. */
  broken(step: number, extra?: Partial<PayloadV1>): PayloadV1;
  /** The family's min_step in the pinned options. */
  minStep: number;
}
