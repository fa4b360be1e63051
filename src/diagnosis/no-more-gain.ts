/**
 * NMG — no more gain.
 *
 * For each metric m in `metrics`, with w = window and h = round(w / 2):
 *   fires when mean(m[-w:-h]) < mean(m[-h:])   (rule recent_mean_higher)
 * Defaults: window = 6 (wd_nmg); **off by default** (enabled = false).
 * Stage: every step once `window` values exist. Persistence: 2. Protected: yes.
 * Source: BTTackler reference (nmg_rule_train, nmg_rule_val). Its authors call it
 *   useless: it fires on any small rise of the val loss. OF replaces it; NMG is kept
 *   for comparison with the reference.
 */
import type { Finding, RuleContext, SymptomRule } from "./rule.js";
import type { NoMoreGainOptions } from "./types.js";
import { fmt, mean } from "./stats.js";

export class NoMoreGainRule implements SymptomRule {
  readonly code = "NMG" as const;

  constructor(readonly options: NoMoreGainOptions) {}

  check(ctx: RuleContext): Finding[] {
    const w = this.options.window;
    const h = Math.round(w / 2);
    const findings: Finding[] = [];
    for (const metric of this.options.metrics) {
      const values = ctx.series(metric).values;
      if (values.length < w) continue;
      const head = mean(values.slice(values.length - w, values.length - h));
      const tail = mean(values.slice(values.length - h));
      if (head < tail) {
        findings.push({
          rule: "recent_mean_higher",
          message: `${metric} averaged ${fmt(tail)} over the last ${h} steps, worse than ${fmt(head)} before`,
          evidence: { indicator: `mean(last ${h} ${metric})`, value: tail, threshold: head },
        });
      }
    }
    return findings;
  }
}
