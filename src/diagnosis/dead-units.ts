/**
 * DEAD — dead ReLU units, measured directly.
 *
 * d_l = act_zero_frac of layer l (share of units that output 0 on every probe example);
 *   when no layer carries it, d_l = bias_grad_zero_frac (share of units whose bias got no
 *   gradient in any sampled batch of the epoch — a unit that never activates never does).
 * Formula: fires when median_l(d_l) > dead_frac_median_max   (rule dead_units)
 *   the output layer excluded when exclude_output_layer and more than one layer reports.
 * Progress guard (docs/symptoms.md#progress-guard): a finding holds only while the train loss
 *   fell by less than progress_min (relative) over the last progress_window steps: a network
 *   with most units dead that still lowers its loss learns with the units it has (ReLU RNNs
 *   with 72–78 % dead units end in the char-RNN task's top quartile). From a median dead share
 *   of unguarded_from on the guard does not apply: with (almost) every unit dead, the loss
 *   moves only by the output layer or by noise (a dead MLP's 12.41, 13.63, 13.63, 13.23 "fell").
 * Defaults: dead_frac_median_max = 0.7, exclude_output_layer = true, min_step = 1;
 *   progress_metric = train_loss, progress_window = 2, progress_min = 1e-3, unguarded_from = 0.95.
 * Stage: every step. Persistence: 2. Protected: yes.
 * Source: docs/symptoms.md#dead; DeepDiagnosis (ICSE'22) dead >= 70 %; AUTOTRAINER dying ReLU 0.7.
 *   Unlike DR it does not read kernel gradients, so input sparsity cannot trigger it.
 */
import type { Finding, RuleContext, SymptomRule } from "./rule.js";
import { hiddenLayerColumn, progressClause, progressGuard } from "./rule.js";
import type { DeadUnitOptions } from "./types.js";
import { fmt, median } from "./stats.js";

export class DeadUnitRule implements SymptomRule {
  readonly code = "DEAD" as const;

  constructor(readonly options: DeadUnitOptions) {}

  check(ctx: RuleContext): Finding[] {
    const skip = this.options.exclude_output_layer;
    let field: "act_zero_frac" | "bias_grad_zero_frac" = "act_zero_frac";
    let d = hiddenLayerColumn(ctx.payload, field, skip).values;
    if (d.length === 0) {
      field = "bias_grad_zero_frac";
      d = hiddenLayerColumn(ctx.payload, field, skip).values;
    }
    if (d.length === 0) return [];
    const dm = median(d);
    const limit = this.options.dead_frac_median_max;
    if (!(dm > limit)) return [];
    // with (almost) every unit dead the hidden layers cannot learn: a falling loss is the output layer's, or noise
    const guard = dm >= this.options.unguarded_from ? { open: true, fall: undefined } : progressGuard(ctx, this.options);
    if (!guard.open) return [];
    return [
      {
        rule: "dead_units",
        message: `a median ${fmt(dm * 100)} % of units are dead (${field}, limit ${fmt(limit * 100)} %)${progressClause(this.options, guard.fall)}`,
        evidence: { indicator: `median(${field})`, value: dm, threshold: limit },
      },
    ];
  }
}
