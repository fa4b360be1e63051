/**
 * LAG — lagging behind the cohort.
 *
 * Let v be the trial's value of `metric` at step t (by default the study's objective:
 * val_acc, else val_loss, else train_loss, src/diagnosis/objective.ts), and P the peers at
 * t in that same metric: the values the
 * other trials reported at t, plus every trial that stopped or ended before t at its last
 * value (src/diagnosis/peers.ts). With b = |{p in P : p strictly better than v}| (better =
 * larger for direction maximize, smaller for minimize):
 * Formula: fires when |P| >= min_cohort and b / |P| > max_better_share   (rule behind_cohort)
 *   i.e. with the default 0.5, the trial is below the cohort's median at its step.
 * Defaults: metric = "objective", direction = "auto" (the objective's), max_better_share = 0.5,
 *   min_cohort = 20, min_step = 3. Stage: every step. Persistence: 2. Protected: yes.
 * Source: not a training pathology of the reference; the cohort comparison of the median
 *   stopping rule (Golovin et al., Google Vizier, KDD 2017), made safe for a live study:
 *   a warm-up of min_step steps, persistence, cohort protection, and the departed trials
 *   carried forward so that surviving does not lower a trial's rank. Calibrated on the
 *   recorded traces (docs/benchmarks.md).
 */
import type { Finding, RuleContext, SymptomRule } from "./rule.js";
import type { LaggingOptions, ObjectiveConfig } from "./types.js";
import { describeObjective, type ObjectiveCandidate, objectiveValue, ruleCandidates } from "./objective.js";
import { fmt } from "./stats.js";

export class LaggingRule implements SymptomRule {
  readonly code = "LAG" as const;
  /** What the trial is judged by, in order: the objective's candidates, or the one named metric. */
  private readonly candidates: ObjectiveCandidate[];

  constructor(
    readonly options: LaggingOptions,
    objective: ObjectiveConfig,
  ) {
    this.candidates = ruleCandidates(options, objective);
  }

  /** The metrics whose peers the engine must keep. */
  get peerMetrics(): string[] {
    return this.candidates.map((c) => c.metric);
  }

  check(ctx: RuleContext): Finding[] {
    const o = this.options;
    const judged = objectiveValue(this.candidates, ctx.payload);
    if (judged === undefined) return [];
    const peers = ctx.peers(judged.metric);
    if (peers === undefined || peers.size < o.min_cohort) return [];
    const share = peers.better(judged.value, judged.direction) / peers.size;
    if (!(share > o.max_better_share)) return [];
    const name = describeObjective(judged);
    return [
      {
        rule: "behind_cohort",
        message: `${name} ${fmt(judged.value)} is behind ${fmt(share * 100)} % of the ${peers.size} trials at step ${ctx.step} (limit ${fmt(o.max_better_share * 100)} %)`,
        evidence: { indicator: `share of trials with a better ${name}`, value: share, threshold: o.max_better_share },
      },
    ];
  }
}
