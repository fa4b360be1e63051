/**
 * SC — slow convergence.
 *
 * Early (step < floor(late_start * max_steps)), on the train loss curve L so far, and with
 *   early_val_check also on the val loss curve (each on its own):
 *   fires when |L| >= early_min_points and CV(L) < early_cv_min            (rule flat_curve)
 *   A train loss can keep falling while nothing is learnt (a weight-decay term shrinking,
 *   a huge initial loss coming down to chance): the val curve then sits flat at chance.
 * Late (step >= floor(late_start * max_steps)), separately for the train and the val
 *   loss curve L (|L| >= late_min_points), split at h = floor(|L| / 2):
 *   fires when CV(L[h:]) > CV(L[:h])                                       (rule late_cv_rising)
 * CV = std / mean (population std); a curve with a non-positive mean has no CV and is skipped.
 * Defaults: early_cv_min = 0.01 (the reference's p_sc1 is 1e-4), early_val_check = true,
 *   early_min_points = 3, late_min_points = 6 (the reference's window), late_start = 0.5,
 *   late_check = false: the late check is off
 *   by default, because CV is scale-free: on a loss that decays exponentially towards a
 *   small floor both halves have nearly the same CV, so noise decides, and on a steady
 *   linear decline the second half's CV is larger (same spread, smaller mean). Healthy
 *   curves trip it (seen in real NNI runs of the mnist example).
 * Stage: whole run, split at late_start (needs max_steps). Persistence: 1. Protected: no
 *   (early_cv_min, early_val_check, persistence and protection calibrated on recorded traces,
 *   docs/benchmarks.md#defaults).
 * Source: BTTackler reference (sc_rule_early, sc_rule_late_train, sc_rule_late_val).
 * Differences from the reference: the early check also on the val loss; the late check is opt-in.
 */
import type { Finding, RuleContext, SymptomRule } from "./rule.js";
import { stepAt } from "./rule.js";
import type { SlowConvergenceOptions } from "./types.js";
import { cv, fmt } from "./stats.js";

export class SlowConvergenceRule implements SymptomRule {
  readonly code = "SC" as const;

  constructor(readonly options: SlowConvergenceOptions) {}

  check(ctx: RuleContext): Finding[] {
    if (ctx.maxSteps === undefined) return [];
    const o = this.options;
    if (ctx.step < stepAt(o.late_start, ctx.maxSteps)) return this.early(ctx);
    if (!o.late_check) return [];
    return [o.metric, o.val_metric].flatMap((metric) => this.late(ctx, metric));
  }

  private early(ctx: RuleContext): Finding[] {
    const o = this.options;
    const metrics = o.early_val_check ? [o.metric, o.val_metric] : [o.metric];
    return metrics.flatMap((metric): Finding[] => {
      const values = ctx.series(metric).values;
      if (values.length < o.early_min_points) return [];
      const c = cv(values);
      if (c === undefined || !(c < o.early_cv_min)) return [];
      return [
        {
          rule: "flat_curve",
          message: `${metric} has not moved: CV ${fmt(c)} over ${values.length} steps (limit ${fmt(o.early_cv_min)})`,
          evidence: { indicator: `cv(${metric})`, value: c, threshold: o.early_cv_min },
        },
      ];
    });
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
