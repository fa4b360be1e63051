/**
 * NF — non-finite values.
 *
 * Formula: fires when the payload's `non_finite` flag is true, when any metric is
 *   null/NaN/±Infinity (metrics listed in `ignore_metrics` excepted), or when any
 *   layer indicator is null/NaN/±Infinity.
 * Thresholds: none (any occurrence). Stage: every step. Persistence: 1.
 * Protected: never — a non-finite trial cannot recover.
 * Source: new in bttackler (docs/symptoms.md#nf). The reference code meant to do this in its EG rule but
 *   its flag could never become true (`&=` on False) and NaN was never checked;
 *   here the check is real, and any non-finite loss, gradient or weight stops the
 *   trial at the step it appears.
 */
import type { Finding, RuleContext, SymptomRule } from "./rule.js";
import { LAYER_FIELDS, layerName } from "./rule.js";
import type { LayerIndicators, NonFiniteOptions } from "./types.js";
import { isNonFinite } from "./stats.js";

export class NonFiniteRule implements SymptomRule {
  readonly code = "NF" as const;
  private readonly ignored: ReadonlySet<string>;

  constructor(readonly options: NonFiniteOptions) {
    this.ignored = new Set(options.ignore_metrics);
  }

  check(ctx: RuleContext): Finding[] {
    const p = ctx.payload;
    const findings: Finding[] = [];
    if (p.non_finite === true) {
      findings.push({
        rule: "non_finite_flag",
        message: "the trial reported NaN/Inf in its loss, gradients or weights during this step",
        evidence: { indicator: "non_finite", value: null, threshold: 0 },
      });
    }
    const badMetrics = Object.entries(p.metrics ?? {}).filter(
      ([name, v]) => !this.ignored.has(name) && isNonFinite(v),
    );
    const first = badMetrics[0];
    if (first) {
      const names = badMetrics.map(([name]) => name).join(", ");
      findings.push({
        rule: "non_finite_metric",
        message: badMetrics.length === 1 ? `metric ${names} is not finite` : `metrics ${names} are not finite`,
        evidence: { indicator: first[0], value: null, threshold: 0 },
      });
    }
    const badLayers: { layer: string; field: string }[] = [];
    (p.layers ?? []).forEach((layer: LayerIndicators, i) => {
      for (const field of LAYER_FIELDS) {
        if (isNonFinite(layer[field])) badLayers.push({ layer: layerName(layer, i), field });
      }
    });
    const firstLayer = badLayers[0];
    if (firstLayer) {
      const more = badLayers.length > 1 ? ` (${badLayers.length} non-finite layer values in all)` : "";
      findings.push({
        rule: "non_finite_layer",
        message: `${firstLayer.field} of layer ${firstLayer.layer} is not finite${more}`,
        evidence: { indicator: firstLayer.field, value: null, threshold: 0, layer: firstLayer.layer },
      });
    }
    return findings;
  }
}
