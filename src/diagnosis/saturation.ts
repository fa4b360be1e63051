/**
 * SAT — saturated sigmoid/tanh units.
 *
 * s_l = act_saturated_frac of layer l (share of activations with |pre-activation| >= 5
 *   on the probe batch; only layers with a saturating activation carry it).
 * Formula: fires when median_l(s_l) > saturated_frac_median_max   (rule saturated_units)
 *   the output layer excluded when exclude_output_layer and more than one layer reports
 *   (a confident sigmoid output is saturated by design).
 * Defaults: saturated_frac_median_max = 0.5, exclude_output_layer = true, min_step = 1.
 * Stage: every step. Persistence: 2. Protected: yes. Off by default: on the recorded traces
 *   sigmoid/tanh nets with most units saturated still reached 0.90-0.93 val accuracy.
 * Source: docs/symptoms.md#sat; DeepDiagnosis (ICSE'22): saturated when > 50 % of units have |x| >= 5.
 */
import type { Finding, RuleContext, SymptomRule } from "./rule.js";
import { hiddenLayerColumn } from "./rule.js";
import type { SaturationOptions } from "./types.js";
import { fmt, median } from "./stats.js";

export class SaturatedActivationRule implements SymptomRule {
  readonly code = "SAT" as const;

  constructor(readonly options: SaturationOptions) {}

  check(ctx: RuleContext): Finding[] {
    const s = hiddenLayerColumn(ctx.payload, "act_saturated_frac", this.options.exclude_output_layer).values;
    if (s.length === 0) return [];
    const sm = median(s);
    const limit = this.options.saturated_frac_median_max;
    if (!(sm > limit)) return [];
    return [
      {
        rule: "saturated_units",
        message: `a median ${fmt(sm * 100)} % of activations are saturated (limit ${fmt(limit * 100)} %)`,
        evidence: { indicator: "median(act_saturated_frac)", value: sm, threshold: limit },
      },
    ];
  }
}
