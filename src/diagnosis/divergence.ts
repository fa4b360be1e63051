/**
 * DIV — divergence.
 *
 * For each metric m in `metrics`, with best = min of m over the earlier steps:
 *   fires when best > 0 and m(t) > factor * best   (rule loss_above_best)
 * With persistence 2 this reads "the loss stayed above twice its best for 2 steps in a row".
 * Defaults: metrics = [train_loss], factor = 3 (calibrated on recorded traces, docs/benchmarks.md#defaults), min_step = 1.
 * Stage: every step. Persistence: 2. Protected: no.
 * Source: docs/symptoms.md#div, new in bttackler.
 */
import type { Finding, RuleContext, SymptomRule } from "./rule.js";
import type { DivergenceOptions } from "./types.js";
import { fmt } from "./stats.js";

export class DivergenceRule implements SymptomRule {
  readonly code = "DIV" as const;

  constructor(readonly options: DivergenceOptions) {}

  check(ctx: RuleContext): Finding[] {
    const findings: Finding[] = [];
    for (const metric of this.options.metrics) {
      const { steps, values } = ctx.series(metric);
      const n = values.length;
      if (n < 2 || steps[n - 1] !== ctx.step) continue;
      const now = values[n - 1] as number;
      let best = Infinity;
      for (let i = 0; i < n - 1; i++) best = Math.min(best, values[i] as number);
      const limit = this.options.factor * best;
      if (best > 0 && now > limit) {
        findings.push({
          rule: "loss_above_best",
          message: `${metric} ${fmt(now)} is more than ${fmt(this.options.factor)}x its best ${fmt(best)}`,
          evidence: { indicator: metric, value: now, threshold: limit },
        });
      }
    }
    return findings;
  }
}
