/**
 * VG — vanishing gradient.
 *
 * Per layer l (input side first): g_l = grad_abs_mean, q_l = g_l / g_{l+1}.
 * Formula: fires when median_l(g_l) < grad_median_min              (rule grad_median_low)
 *          or when some layer has g_l = 0 exactly                   (rule zero_layer_grad)
 *          or when median_l(q_l) < ratio_median_min                 (rule grad_ratio_low)
 *          (q only over neighbouring layers whose g_{l+1} > 0).
 * Progress guard (docs/symptoms.md#progress-guard): a finding holds only while the train loss
 *   fell by less than progress_min (relative) over the last progress_window steps: small
 *   gradients in a trial whose loss keeps falling are its scale, not a symptom (attention
 *   models and recurrent nets train well with a median |grad| under 1e-5).
 * Defaults: grad_median_min = 1e-5, ratio_median_min = 1e-4, zero_layer_grad = true
 *   (the reference's p_vg1 and p_vg2); progress_metric = train_loss, progress_window = 2,
 *   progress_min = 1e-3 (so the rule first speaks at step 2).
 * Stage: first half (step < floor(0.5 * max_steps)). Persistence: 1. Protected: yes (chosen
 *   across tasks, docs/benchmarks.md#diagnosis-across-tasks--per-task-benchmark-ceilings-leave-one-task-out:
 *   a sigmoid LSTM whose train loss is among the study's best 10 % at its step, gradients
 *   3e-6, ends in the char-RNN's top quartile).
 * Source: BTTackler reference (vg_rule1, vg_rule2); DeepDiagnosis (ICSE'22) uses
 *   mean|dW| < 1e-7, AUTOTRAINER a first/last ratio < 1e-3.
 * Differences from the reference: the progress guard.
 */
import type { Finding, RuleContext, SymptomRule } from "./rule.js";
import { layerColumn, progressClause, progressGuard } from "./rule.js";
import type { VanishingGradientOptions } from "./types.js";
import { adjacentRatios, fmt, median } from "./stats.js";

export class VanishingGradientRule implements SymptomRule {
  readonly code = "VG" as const;

  constructor(readonly options: VanishingGradientOptions) {}

  check(ctx: RuleContext): Finding[] {
    const { values: g, names } = layerColumn(ctx.payload, "grad_abs_mean");
    if (g.length === 0) return [];
    const o = this.options;
    const guard = progressGuard(ctx, o);
    if (!guard.open) return [];
    const stalled = progressClause(o, guard.fall);
    const findings: Finding[] = [];
    const gm = median(g);
    if (gm < o.grad_median_min) {
      findings.push({
        rule: "grad_median_low",
        message: `median gradient magnitude ${fmt(gm)} is below ${fmt(o.grad_median_min)}${stalled}`,
        evidence: { indicator: "median(grad_abs_mean)", value: gm, threshold: o.grad_median_min },
      });
    }
    const zeroAt = g.indexOf(0);
    if (o.zero_layer_grad && zeroAt >= 0) {
      const layer = names[zeroAt] as string;
      findings.push({
        rule: "zero_layer_grad",
        message: `layer ${layer} received no gradient at all${stalled}`,
        evidence: { indicator: "grad_abs_mean", value: 0, threshold: 0, layer },
      });
    }
    const q = adjacentRatios(g);
    if (q.length > 0) {
      const qm = median(q);
      if (qm < o.ratio_median_min) {
        findings.push({
          rule: "grad_ratio_low",
          message: `gradients shrink to ${fmt(qm)}x per layer towards the input (limit ${fmt(o.ratio_median_min)})${stalled}`,
          evidence: { indicator: "median(grad_ratio)", value: qm, threshold: o.ratio_median_min },
        });
      }
    }
    return findings;
  }
}
