/**
 * UWR — update-to-weight ratio.
 *
 * u_l = update_ratio of layer l = ||W_end - W_start|| / max(||W_start||, floor) over the epoch.
 * Formula: fires when median_l(u_l) > median_max   (rule update_ratio_high: learning rate too high)
 *          or when median_l(u_l) < median_min      (rule update_ratio_low: weights frozen)
 * Progress guard (docs/symptoms.md#progress-guard): a finding holds only while the train loss
 *   fell by less than progress_min (relative) over the last progress_window steps: weights
 *   that move a lot while the loss falls fast are a fast learner's first epochs (adam on an
 *   attention model moves a zero-initialised embedding by more than its norm), not a symptom.
 * Defaults: median_max = 1 (weights change by more than their own size in one epoch),
 *   median_min = 1e-7, min_step = 1 (epoch 0 includes the move away from initialisation);
 *   progress_metric = train_loss, progress_window = 2, progress_min = 1e-3.
 *   The per-batch rule of thumb is ~1e-3; these bounds are per epoch and deliberately wide.
 * Stage: every step. Persistence: 1. Protected: no (chosen across tasks, docs/benchmarks.md#diagnosis-across-tasks--per-task-benchmark-ceilings-leave-one-task-out).
 * Source: docs/symptoms.md#uwr, new in bttackler (Karpathy's update/weight heuristic).
 */
import type { Finding, RuleContext, SymptomRule } from "./rule.js";
import { layerColumn, progressClause, progressGuard } from "./rule.js";
import type { UpdateRatioOptions } from "./types.js";
import { fmt, median } from "./stats.js";

export class UpdateRatioRule implements SymptomRule {
  readonly code = "UWR" as const;

  constructor(readonly options: UpdateRatioOptions) {}

  check(ctx: RuleContext): Finding[] {
    const u = layerColumn(ctx.payload, "update_ratio").values;
    if (u.length === 0) return [];
    const um = median(u);
    const o = this.options;
    const guard = progressGuard(ctx, o);
    if (!guard.open) return [];
    const stalled = progressClause(o, guard.fall);
    if (um > o.median_max) {
      return [
        {
          rule: "update_ratio_high",
          message: `weights moved ${fmt(um)}x their own norm in one step (limit ${fmt(o.median_max)})${stalled}: learning rate too high`,
          evidence: { indicator: "median(update_ratio)", value: um, threshold: o.median_max },
        },
      ];
    }
    if (um < o.median_min) {
      return [
        {
          rule: "update_ratio_low",
          message: `weights moved only ${fmt(um)}x their norm in one step (limit ${fmt(o.median_min)})${stalled}: training is frozen`,
          evidence: { indicator: "median(update_ratio)", value: um, threshold: o.median_min },
        },
      ];
    }
    return [];
  }
}
