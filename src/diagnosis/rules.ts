/** The rule families in evaluation order, built from a resolved config. NF comes first: when it fires, nothing else is checked. */
import type { SymptomRule } from "./rule.js";
import type { ObjectiveConfig, RulesConfig } from "./types.js";
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

export function createRules(rules: RulesConfig, objective: ObjectiveConfig): SymptomRule[] {
  const all: SymptomRule[] = [
    new NonFiniteRule(rules.NF),
    new ExplodingGradientRule(rules.EG),
    new DivergenceRule(rules.DIV),
    new VanishingGradientRule(rules.VG),
    new DyingReluRule(rules.DR),
    new DeadUnitRule(rules.DEAD),
    new SaturatedActivationRule(rules.SAT),
    new UpdateRatioRule(rules.UWR),
    new SlowConvergenceRule(rules.SC),
    new HeavyOscillationRule(rules.HO),
    new OverfittingRule(rules.OF),
    new NoMoreGainRule(rules.NMG),
    new LaggingRule(rules.LAG, objective),
  ];
  return all.filter((rule) => rule.options.enabled);
}
