/**
 * Cohort protection (docs/symptoms.md#cohort-protection): a trial whose protection metric is within the best
 * `percentile` of the values already reported by other trials at the same step is
 * protected from the protectable (soft) rules, from then on.
 *
 * minimize: protected when value <= P_p(cohort at step)
 * maximize: protected when value >= P_(100-p)(cohort at step)
 * P = NumPy linear-interpolation percentile; needs at least `min_cohort` values.
 * The cohort at a step holds every finite value reported at that step before the
 * current report, from every trial of the study (running, stopped or ended); a
 * trial's payloads after its stop are not diagnosed and do not enter the cohort.
 */
import type { ProtectionConfig } from "./types.js";
import { insertSorted, percentileOfSorted } from "./stats.js";

export class Cohort {
  private readonly byStep = new Map<number, number[]>();

  constructor(private readonly config: ProtectionConfig) {}

  /** Whether `value` at `step` is in the protected percentile of what was reported before it. */
  qualifies(step: number, value: number): boolean {
    const sorted = this.byStep.get(step);
    if (sorted === undefined || sorted.length < this.config.min_cohort) return false;
    const { percentile, direction } = this.config;
    return direction === "minimize"
      ? value <= percentileOfSorted(sorted, percentile)
      : value >= percentileOfSorted(sorted, 100 - percentile);
  }

  add(step: number, value: number): void {
    let sorted = this.byStep.get(step);
    if (sorted === undefined) {
      sorted = [];
      this.byStep.set(step, sorted);
    }
    insertSorted(sorted, value);
  }

  size(step: number): number {
    return this.byStep.get(step)?.length ?? 0;
  }
}
