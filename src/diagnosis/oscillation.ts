/**
 * HO — heavy oscillation.
 *
 * For each metric m in `metrics` (by default the train loss only), over the last `window` values W:
 *   fires when slope(W) / mean(W) >= relative_slope_min and CV(W) > cv_min   (rule oscillation)
 * slope = least-squares slope per step; a window with a non-positive mean is skipped.
 * Defaults: metrics = [train_loss], window = 6 (wd_ho), relative_slope_min = 0.01, cv_min = 0.4
 *   (the reference's p_ho2 is 0.2; calibrated, docs/benchmarks.md#defaults). The val loss is
 *   left out by default: a classifier's val loss can swing and climb late (over-confident
 *   mistakes) while its accuracy stays among the best (a CNN ending at 0.87 val accuracy,
 *   docs/benchmarks.md#diagnosis-across-tasks--per-task-benchmark-ceilings-leave-one-task-out); the optimizer's own loss is what oscillates
 *   when the step size is too large.
 * Stage: second half (step >= floor(0.5 * max_steps)). Persistence: 2. Protected: no.
 * Source: BTTackler reference (ho_rule_train; its ho_rule_val is opt-in here).
 * Differences from the reference: its slope threshold (0.01 loss units per epoch) is
 *   absolute, so it means different things for MSE and cross-entropy; the slope is
 *   divided here by the window's mean, which makes the rule scale-free. A detection
 *   must persist for 2 consecutive checks.
 */
import type { Finding, RuleContext, SymptomRule } from "./rule.js";
import type { OscillationOptions } from "./types.js";
import { cv, fmt, mean, slope } from "./stats.js";

export class HeavyOscillationRule implements SymptomRule {
  readonly code = "HO" as const;

  constructor(readonly options: OscillationOptions) {}

  check(ctx: RuleContext): Finding[] {
    const o = this.options;
    const findings: Finding[] = [];
    for (const metric of o.metrics) {
      const values = ctx.series(metric).values;
      if (values.length < o.window) continue;
      const w = values.slice(values.length - o.window);
      const m = mean(w);
      const c = cv(w);
      if (c === undefined) continue;
      const rel = slope(w) / m;
      if (rel >= o.relative_slope_min && c > o.cv_min) {
        findings.push({
          rule: "oscillation",
          message: `${metric} swings (CV ${fmt(c)} > ${fmt(o.cv_min)}) while trending up (${fmt(rel * 100)} % per step) over its last ${o.window} steps`,
          evidence: { indicator: `cv(last ${o.window} ${metric})`, value: c, threshold: o.cv_min },
        });
      }
    }
    return findings;
  }
}
