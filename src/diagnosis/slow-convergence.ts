/**
 * SC — slow convergence.
 *
 * Early (step < floor(late_start * max_steps)), on the train loss curve L so far, and with
 *   early_val_check also on the val loss curve (each on its own):
 *   fires when |L| >= early_min_points and CV(L) < early_cv_min            (rule flat_curve)
 *   and the curve fell by less than early_progress_min (relative) over its last
 *   early_progress_window steps: (L[n-1-w] - L[n-1]) / |L[n-1-w]| < early_progress_min.
 *   A curve near its start that falls steadily is a late bloomer, not a flat one (2.305,
 *   2.302, 2.300, 2.288, 2.265 … 0.91 at the end): its CV is tiny, its fall is not.
 *   A train loss can keep falling while nothing is learnt (a weight-decay term shrinking,
 *   a huge initial loss coming down to chance): the val curve then sits flat at chance.
 *   The val curve is not checked while the train loss lies more than early_val_gap below it
 *   (train_loss < (1 - early_val_gap) * val_loss at the step) before step
 *   floor(early_val_lag_until * max_steps): then the model is learning and validation lags
 *   (batch norm's statistics settling, heavy dropout); it often catches up within a few
 *   epochs, and a validation curve still flat after that will not.
 *   With at least early_min_peers trials of the study at the step (peers, carried forward as
 *   for LAG), a curve is called flat only when at least early_behind_share_min of them have a
 *   lower value: a trial ahead of most of its study is slow, not stuck.
 * Late (step >= floor(late_start * max_steps)), separately for the train and the val
 *   loss curve L (|L| >= late_min_points), split at h = floor(|L| / 2):
 *   fires when CV(L[h:]) > CV(L[:h])                                       (rule late_cv_rising)
 * CV = std / mean (population std); a curve with a non-positive mean has no CV and is skipped.
 * Defaults: early_cv_min = 0.01 (the reference's p_sc1 is 1e-4), early_val_check = true,
 *   early_min_points = 5 (first check at step 4: plateaus of three or four epochs before a
 *   breakthrough are common outside MNIST MLPs), early_progress_window = 3,
 *   early_progress_min = 0.003, early_val_gap = 0.1, early_val_lag_until = 0.4,
 *   early_behind_share_min = 0.5, early_min_peers = 10, late_min_points = 6 (the reference's
 *   window), late_start = 0.5,
 *   late_check = false: the late check is off
 *   by default, because CV is scale-free: on a loss that decays exponentially towards a
 *   small floor both halves have nearly the same CV, so noise decides, and on a steady
 *   linear decline the second half's CV is larger (same spread, smaller mean). Healthy
 *   curves trip it (seen in real NNI runs of the mnist example).
 * Stage: whole run, split at late_start (needs max_steps). Persistence: 1. Protected: no
 *   (chosen across tasks, docs/benchmarks.md#diagnosis-across-tasks--per-task-benchmark-ceilings-leave-one-task-out).
 * Source: BTTackler reference (sc_rule_early, sc_rule_late_train, sc_rule_late_val).
 * Differences from the reference: the early check also on the val loss, and not on a curve
 *   that is still falling; the late check is opt-in.
 */
import type { Finding, RuleContext, SymptomRule } from "./rule.js";
import { describeFall, stepAt, validationLags } from "./rule.js";
import type { SlowConvergenceOptions } from "./types.js";
import { cv, fmt, relativeFall } from "./stats.js";

export class SlowConvergenceRule implements SymptomRule {
  readonly code = "SC" as const;

  constructor(readonly options: SlowConvergenceOptions) {}

  /** The metrics whose peers the engine must keep (for the early check's comparison with the study). */
  get peerMetrics(): string[] {
    const o = this.options;
    if (!(o.early_behind_share_min > 0)) return [];
    return o.early_val_check ? [o.metric, o.val_metric] : [o.metric];
  }

  check(ctx: RuleContext): Finding[] {
    if (ctx.maxSteps === undefined) return [];
    const o = this.options;
    if (ctx.step < stepAt(o.late_start, ctx.maxSteps)) return this.early(ctx);
    if (!o.late_check) return [];
    return [o.metric, o.val_metric].flatMap((metric) => this.late(ctx, metric));
  }

  private early(ctx: RuleContext): Finding[] {
    const o = this.options;
    const lagging = validationLags(ctx, o.metric, o.val_metric, o.early_val_gap, o.early_val_lag_until);
    const metrics = o.early_val_check && !lagging ? [o.metric, o.val_metric] : [o.metric];
    return metrics.flatMap((metric): Finding[] => {
      const values = ctx.series(metric).values;
      if (values.length < o.early_min_points) return [];
      const c = cv(values);
      if (c === undefined || !(c < o.early_cv_min)) return [];
      const fall = relativeFall(values, o.early_progress_window);
      if (fall !== undefined && fall >= o.early_progress_min) return [];
      const behind = this.behindShare(ctx, metric, values[values.length - 1] as number);
      if (behind !== undefined && behind.share < o.early_behind_share_min) return [];
      const among = behind === undefined ? "" : `, behind ${fmt(100 * behind.share)} % of the ${behind.size} trials at step ${ctx.step}`;
      const fell = fall === undefined ? "" : `, ${describeFall(fall)} over the last ${o.early_progress_window} steps`;
      return [
        {
          rule: "flat_curve",
          message: `${metric} has not moved: CV ${fmt(c)} over ${values.length} steps (limit ${fmt(o.early_cv_min)})${fell}${among}`,
          evidence: { indicator: `cv(${metric})`, value: c, threshold: o.early_cv_min },
        },
      ];
    });
  }

  /** The share of the study's trials at this step with a lower value of `metric` (undefined: comparison off, or too few peers). */
  private behindShare(ctx: RuleContext, metric: string, value: number): { share: number; size: number } | undefined {
    const o = this.options;
    if (!(o.early_behind_share_min > 0)) return undefined;
    const peers = ctx.peers(metric);
    if (peers === undefined || peers.size < o.early_min_peers) return undefined;
    return { share: peers.better(value, "minimize") / peers.size, size: peers.size };
  }

  private late(ctx: RuleContext, metric: string): Finding[] {
    const values = ctx.series(metric).values;
    if (values.length < this.options.late_min_points) return [];
    const h = Math.floor(values.length / 2);
    const ahead = cv(values.slice(0, h));
    const recent = cv(values.slice(h));
    if (ahead === undefined || recent === undefined || !(recent > ahead)) return [];
    return [
      {
        rule: "late_cv_rising",
        message: `${metric} varies more in the second half of its curve (CV ${fmt(recent)}) than in the first (CV ${fmt(ahead)})`,
        evidence: { indicator: `cv(${metric} second half)`, value: recent, threshold: ahead },
      },
    ];
  }
}
