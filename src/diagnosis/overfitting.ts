/**
 * OF — overfitting.
 *
 * Let b be the step of the best (lowest) val loss so far and t the current step.
 * Formula: fires when t - b >= patience,
 *          and val(t) > best + (rise_ratio - 1) * |best|   (i.e. val > 1.05 x best for positive losses),
 *          and train(t) < train(b)                          (the train loss is still falling)
 *   (rule val_rising_train_falling).
 * Defaults: patience = 3, rise_ratio = 1.05, min_step = 3.
 * Stage: every step. Persistence: 2. Protected: yes.
 * Source: docs/symptoms.md#of. The reference's OF rule was disabled, wrote into HO and
 *   had its sign inverted; this is the rule as intended. Off by default: on the recorded
 *   traces 7 of its 13 stops were top-quartile trials (the val loss rises from over-confidence
 *   while the val accuracy still improves).
 */
import type { Finding, RuleContext, Series, SymptomRule } from "./rule.js";
import type { OverfittingOptions } from "./types.js";
import { fmt } from "./stats.js";

function valueAt(series: Series, step: number): number | undefined {
  const i = series.steps.lastIndexOf(step);
  return i >= 0 ? series.values[i] : undefined;
}

export class OverfittingRule implements SymptomRule {
  readonly code = "OF" as const;

  constructor(readonly options: OverfittingOptions) {}

  check(ctx: RuleContext): Finding[] {
    const o = this.options;
    const val = ctx.series(o.val_metric);
    const valNow = valueAt(val, ctx.step);
    if (valNow === undefined) return [];
    let bestIdx = 0;
    val.values.forEach((v, i) => {
      if (v < (val.values[bestIdx] as number)) bestIdx = i;
    });
    const best = val.values[bestIdx] as number;
    const bestStep = val.steps[bestIdx] as number;
    if (ctx.step - bestStep < o.patience) return [];
    const limit = best + (o.rise_ratio - 1) * Math.abs(best);
    if (!(valNow > limit)) return [];
    const train = ctx.series(o.train_metric);
    const trainNow = valueAt(train, ctx.step);
    const trainAtBest = valueAt(train, bestStep);
    if (trainNow === undefined || trainAtBest === undefined || !(trainNow < trainAtBest)) return [];
    return [
      {
        rule: "val_rising_train_falling",
        message: `${o.val_metric} ${fmt(valNow)} is above ${fmt(limit)} (best ${fmt(best)} at step ${bestStep}) while ${o.train_metric} fell from ${fmt(trainAtBest)} to ${fmt(trainNow)}`,
        evidence: { indicator: o.val_metric, value: valNow, threshold: limit },
      },
    ];
  }
}
