/**
 * The rule index: every symptom code users see in a verdict, its name (the title of its section in
 * docs/symptoms.md), the file of src/diagnosis/ that holds its rule and the test file that checks it
 * (test/diagnosis/<same name>.test.ts), in evaluation order. NF comes first: when it fires, nothing
 * else is checked. test/diagnosis/rule-index.test.ts checks that every code is here, with its doc
 * section, its file and its test file.
 *
 * | code | name                             | file                   |
 * |------|----------------------------------|------------------------|
 * | NF   | non-finite values                | non-finite.ts          |
 * | EG   | exploding gradient               | exploding-gradient.ts  |
 * | DIV  | divergence                       | divergence.ts          |
 * | VG   | vanishing gradient               | vanishing-gradient.ts  |
 * | DR   | dying ReLU (zero gradients)      | dying-relu.ts          |
 * | DEAD | dead units                       | dead-units.ts          |
 * | SAT  | saturated activations            | saturation.ts          |
 * | UWR  | update-to-weight ratio           | update-ratio.ts        |
 * | SC   | slow convergence                 | slow-convergence.ts    |
 * | HO   | heavy oscillation                | oscillation.ts         |
 * | OF   | overfitting                      | overfitting.ts         |
 * | NMG  | no more gain                     | no-more-gain.ts        |
 * | LAG  | lagging behind the cohort        | lagging.ts             |
 * | PROG | prognosis: cannot reach the top  | prognosis.ts           |
 */
import type { SymptomRule } from "./rule.js";
import type { ObjectiveConfig, RulesConfig, SymptomCode } from "./types.js";
import { NonFiniteRule } from "./non-finite.js";
import { ExplodingGradientRule } from "./exploding-gradient.js";
import { DivergenceRule } from "./divergence.js";
import { VanishingGradientRule } from "./vanishing-gradient.js";
import { DyingReluRule } from "./dying-relu.js";
import { DeadUnitRule } from "./dead-units.js";
import { SaturatedActivationRule } from "./saturation.js";
import { UpdateRatioRule } from "./update-ratio.js";
import { SlowConvergenceRule } from "./slow-convergence.js";
import { HeavyOscillationRule } from "./oscillation.js";
import { OverfittingRule } from "./overfitting.js";
import { NoMoreGainRule } from "./no-more-gain.js";
import { LaggingRule } from "./lagging.js";
import { PrognosisRule } from "./prognosis.js";

export interface RuleIndexEntry {
  code: SymptomCode;
  /** The title of its section in docs/symptoms.md ("## CODE — name"). */
  name: string;
  /** Its file in src/diagnosis/ (its tests: test/diagnosis/ with .test.ts for .ts). */
  file: string;
  create(rules: RulesConfig, objective: ObjectiveConfig): SymptomRule;
}

export const RULE_INDEX: readonly RuleIndexEntry[] = [
  { code: "NF", name: "non-finite values", file: "non-finite.ts", create: (r) => new NonFiniteRule(r.NF) },
  { code: "EG", name: "exploding gradient", file: "exploding-gradient.ts", create: (r) => new ExplodingGradientRule(r.EG) },
  { code: "DIV", name: "divergence", file: "divergence.ts", create: (r) => new DivergenceRule(r.DIV) },
  { code: "VG", name: "vanishing gradient", file: "vanishing-gradient.ts", create: (r) => new VanishingGradientRule(r.VG) },
  { code: "DR", name: "dying ReLU (zero gradients)", file: "dying-relu.ts", create: (r) => new DyingReluRule(r.DR) },
  { code: "DEAD", name: "dead units", file: "dead-units.ts", create: (r) => new DeadUnitRule(r.DEAD) },
  { code: "SAT", name: "saturated activations", file: "saturation.ts", create: (r) => new SaturatedActivationRule(r.SAT) },
  { code: "UWR", name: "update-to-weight ratio", file: "update-ratio.ts", create: (r) => new UpdateRatioRule(r.UWR) },
  { code: "SC", name: "slow convergence", file: "slow-convergence.ts", create: (r) => new SlowConvergenceRule(r.SC) },
  { code: "HO", name: "heavy oscillation", file: "oscillation.ts", create: (r) => new HeavyOscillationRule(r.HO) },
  { code: "OF", name: "overfitting", file: "overfitting.ts", create: (r) => new OverfittingRule(r.OF) },
  { code: "NMG", name: "no more gain", file: "no-more-gain.ts", create: (r) => new NoMoreGainRule(r.NMG) },
  { code: "LAG", name: "lagging behind the cohort", file: "lagging.ts", create: (r, o) => new LaggingRule(r.LAG, o) },
  { code: "PROG", name: "prognosis: cannot reach the top", file: "prognosis.ts", create: (r, o) => new PrognosisRule(r.PROG, o) },
];

/** The enabled rule families in evaluation order, built from a resolved config. */
export function createRules(rules: RulesConfig, objective: ObjectiveConfig): SymptomRule[] {
  return RULE_INDEX.map((entry) => entry.create(rules, objective)).filter((rule) => rule.options.enabled);
}
