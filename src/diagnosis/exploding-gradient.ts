/**
 * EG — exploding gradient.
 *
 * Per layer l (input side first): g_l = grad_abs_mean, q_l = g_l / g_{l+1}.
 * Formula: fires when median_l(g_l) > grad_median_max            (rule grad_median_high)
 *          or when median_l(q_l) > ratio_median_max              (rule grad_ratio_high)
 *          (q only over neighbouring layers whose g_{l+1} > 0).
 * Defaults: grad_median_max = 1e4, ratio_median_max = 1e3 (the reference's p_eg1, p_eg2).
 * Stage: every step. Persistence: 1. Protected: no.
 * Source: BTTackler reference (eg_rule1, eg_rule2); AUTOTRAINER (ICSE'21) uses a
 *   first/last gradient ratio > 70 for the same family.
 * Differences from the reference: non-finite gradients belong to NF, which really
 *   detects them. A quotient with a zero denominator (a layer whose neighbour has
 *   g = 0) is a vanishing signal, left to VG's zero_layer_grad (first half only);
 *   it is not counted here as explosion, and the other quotients still are.
 */
import type { Finding, RuleContext, SymptomRule } from "./rule.js";
import { layerColumn } from "./rule.js";
import type { ExplodingGradientOptions } from "./types.js";
import { adjacentRatios, fmt, median } from "./stats.js";

export class ExplodingGradientRule implements SymptomRule {
  readonly code = "EG" as const;

  constructor(readonly options: ExplodingGradientOptions) {}

  check(ctx: RuleContext): Finding[] {
    const g = layerColumn(ctx.payload, "grad_abs_mean").values;
    if (g.length === 0) return [];
    const findings: Finding[] = [];
    const gm = median(g);
    if (gm > this.options.grad_median_max) {
      findings.push({
        rule: "grad_median_high",
        message: `median gradient magnitude ${fmt(gm)} exceeds ${fmt(this.options.grad_median_max)}`,
        evidence: { indicator: "median(grad_abs_mean)", value: gm, threshold: this.options.grad_median_max },
      });
    }
    const q = adjacentRatios(g);
    if (q.length > 0) {
      const qm = median(q);
      if (qm > this.options.ratio_median_max) {
        findings.push({
          rule: "grad_ratio_high",
          message: `gradients grow ${fmt(qm)}x per layer towards the input (limit ${fmt(this.options.ratio_median_max)})`,
          evidence: { indicator: "median(grad_ratio)", value: qm, threshold: this.options.ratio_median_max },
        });
      }
    }
    return findings;
  }
}
