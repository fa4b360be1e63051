/**
 * DR — dying ReLU, from zero gradients.
 *
 * Formula: z_l = grad_zero_frac of layer l; fires when median_l(z_l) > zero_frac_median_max,
 *   the input-side layer excluded when exclude_input_layer (rule grad_zero_frac_high).
 * Defaults: zero_frac_median_max = 0.5 (the reference's p_dr1), exclude_input_layer = true,
 *   min_step = 4 (the reference waits for 5 reported epochs).
 * Stage: every step from min_step. Persistence: 2. Protected: yes. Off by default: on the recorded
 *   traces it caught no hopeless trial that DEAD missed and stopped mid-quality ones.
 * Source: BTTackler reference (dr_rule1); AUTOTRAINER (ICSE'21) uses zero-gradient ratio >= 0.7.
 * Differences from the reference: the zero fraction of the first layer's kernel
 *   measures input sparsity, not dead units (a healthy MNIST MLP shows 0.41 there),
 *   so that layer is left out by default; for dead units measured directly see DEAD.
 */
import type { Finding, RuleContext, SymptomRule } from "./rule.js";
import { layerColumn } from "./rule.js";
import type { DyingReluOptions } from "./types.js";
import { fmt, median } from "./stats.js";

export class DyingReluRule implements SymptomRule {
  readonly code = "DR" as const;

  constructor(readonly options: DyingReluOptions) {}

  check(ctx: RuleContext): Finding[] {
    const z = layerColumn(ctx.payload, "grad_zero_frac", { skipFirst: this.options.exclude_input_layer }).values;
    if (z.length === 0) return [];
    const zm = median(z);
    if (!(zm > this.options.zero_frac_median_max)) return [];
    return [
      {
        rule: "grad_zero_frac_high",
        message: `a median ${fmt(zm * 100)} % of gradient entries are exactly zero (limit ${fmt(this.options.zero_frac_median_max * 100)} %)`,
        evidence: { indicator: "median(grad_zero_frac)", value: zm, threshold: this.options.zero_frac_median_max },
      },
    ];
  }
}
