/**
 * PROG — prognosis: the trial trains, but cannot reach the study's top quartile.
 *
 * A forecast of the trial's final objective from its curve so far, made from the study's
 * own finished trials (nearest early curves). Let m be the objective (the study's
 * objective for this payload, src/diagnosis/objective.ts, or the metric named in
 * `metric`), v its curve for this trial, t the step, and W = the trial's last `window`
 * steps up to t. For each finished trial j (ended "complete", having a value of m at
 * every step of W and a final value F_j of m at a later step):
 *   d_j = mean over s in W of |v_s - u_j,s|                        (distance of the curves)
 *   f_j = F_j + (v_t - u_j,t)                                      (j's end, from where v is)
 * Take the k = `neighbors` finished trials with the smallest d_j (ties: earlier finished
 * first). The forecast interval is [min f_j, max f_j] over them, and the optimistic
 * forecast o is its better end (max for maximize, min for minimize), carried `reach` x
 * (max f_j - min f_j) further in the better direction (0 by default: the best of k
 * neighbours is beaten by about one trial in k + 1, and reach trades stops for safety).
 * The cut c is where the study's top `top_share` begins (linear percentile,
 * 100 (1 - top_share) for maximize, 100 top_share for minimize) over the outcomes of every
 * trial that has left the study: the finished ones at their final value, the stopped and
 * pruned ones at their last value (carried forward, as LAG's peers: judged only against
 * the finished ones, the cut would rise as the weak trials are stopped).
 * With IQR the interquartile range of those same outcomes (scale-free: the margin means
 * the same for an accuracy and for a loss of any scale):
 * Formula: fires when at least `min_finished` trials finished, at least `min_outcomes`
 *   have left, and o is worse than c by more than `margin` x IQR         (rule cannot_reach_top)
 *   i.e. o < c - margin IQR (maximize), o > c + margin IQR (minimize).
 * The optimistic forecast o is the better of the neighbours' end and, with `trend`, the
 *   trial's own trend (least-squares slope of its last `window` values) carried on to its last
 *   planned step: a curve still climbing is not written off. A minimized curve that is positive
 *   throughout (a loss) is carried on the log scale, v_t exp(slope(log v) (T - t)): a loss falls by
 *   a factor per step, and a line through a steep fall (600, 300, 150) would forecast a loss below 0.
 * Validation lags: before step floor(val_lag_until * max_steps), the rule waits while
 *   train_metric < (1 - val_gap) * val_metric at the step: the model learns and validation has
 *   not caught up (batch-norm CNNs whose val accuracy sits at chance for seven epochs and
 *   ends at 0.92); the nearest curves of such a trial are those of trials that never learned.
 * When no trial has finished yet it says nothing.
 * Defaults: metric = "objective", neighbors = 5, window = 3, top_share = 0.25,
 *   min_finished = 5, min_outcomes = 10, margin = 0.1, reach = 0, trend = true, train_metric =
 *   train_loss, val_metric = val_loss, val_gap = 0.5, val_lag_until = 0.4; min_step = 5,
 *   persistence = 2, protectable. Stage: every step. Chosen across tasks:
 *   docs/benchmarks.md#diagnosis-across-tasks--per-task-benchmark-ceilings-leave-one-task-out.
 * Source: new in bttackler; learning-curve extrapolation from the study's own curves, in
 *   the spirit of the nearest-neighbour curve forecasts of learning-curve prediction (e.g.
 *   Domhan et al., IJCAI 2015, who fit parametric curves instead), made safe for a live
 *   study: an optimistic end of the interval, carried-forward outcomes, persistence and
 *   cohort protection.
 */
import { describeObjective, type ObjectiveCandidate, objectiveValue, ruleCandidates } from "./objective.js";
import { validationLags, type Finding, type RuleContext, type Series, type SymptomRule } from "./rule.js";
import { fmt, percentileOfSorted, searchSorted, slope } from "./stats.js";
import type { ObjectiveConfig, PrognosisOptions } from "./types.js";

/** The value of a series at a step, or undefined. */
function valueAt(series: Series, step: number): number | undefined {
  const i = searchSorted(series.steps as number[], step, "left");
  return series.steps[i] === step ? series.values[i] : undefined;
}

/**
 * The trial's value `ahead` steps on, carried along the least-squares trend of `recent` (ending at `now`).
 * A minimized curve that is positive throughout (a loss) is carried on the log scale: a loss falls by a
 * factor per step, and a straight line through a steep fall would forecast a loss below zero.
 */
function carriedTrend(recent: readonly number[], now: number, ahead: number, minimize: boolean): number {
  if (minimize && now > 0 && recent.every((v) => v > 0)) return now * Math.exp(slope(recent.map(Math.log)) * ahead);
  return now + slope(recent) * ahead;
}

export class PrognosisRule implements SymptomRule {
  readonly code = "PROG" as const;
  private readonly candidates: ObjectiveCandidate[];

  constructor(
    readonly options: PrognosisOptions,
    objective: ObjectiveConfig,
  ) {
    this.candidates = ruleCandidates(options, objective);
  }

  /** The metrics whose outcomes the engine must keep. */
  get outcomeMetrics(): string[] {
    return this.candidates.map((c) => c.metric);
  }

  check(ctx: RuleContext): Finding[] {
    const o = this.options;
    const judged = objectiveValue(this.candidates, ctx.payload);
    if (judged === undefined) return [];
    if (validationLags(ctx, o.train_metric, o.val_metric, o.val_gap, o.val_lag_until)) return [];
    const outcomes = ctx.outcomes(judged.metric);
    if (outcomes === undefined || outcomes.finished.length < o.min_finished) return [];
    const left = outcomes.finished.length + outcomes.departed.length;
    if (left < o.min_outcomes) return [];

    const own = ctx.series(judged.metric);
    const window = own.steps.slice(-o.window);
    const vt = judged.value;
    const scored: { d: number; f: number }[] = [];
    for (const j of outcomes.finished) {
      const last = j.steps[j.steps.length - 1];
      if (last === undefined || last <= ctx.step) continue;
      let sum = 0;
      let ok = true;
      for (const [k, s] of window.entries()) {
        const u = valueAt(j, s);
        if (u === undefined) {
          ok = false;
          break;
        }
        sum += Math.abs((own.values[own.values.length - window.length + k] as number) - u);
      }
      const ut = valueAt(j, ctx.step);
      if (!ok || ut === undefined) continue;
      scored.push({ d: sum / window.length, f: (j.values[j.values.length - 1] as number) + (vt - ut) });
    }
    if (scored.length < Math.min(o.neighbors, o.min_finished)) return [];
    // stable: equal distances keep the finishing order
    const nearest = scored
      .map((x, i) => ({ ...x, i }))
      .sort((a, b) => a.d - b.d || a.i - b.i)
      .slice(0, o.neighbors);
    const forecasts = nearest.map((x) => x.f);
    const low = Math.min(...forecasts);
    const high = Math.max(...forecasts);
    const maximize = judged.direction === "maximize";
    // the trial's own trend, carried on to its last planned step: a curve still climbing is not written off
    const last = ctx.maxSteps === undefined ? undefined : ctx.maxSteps - 1;
    const recent = own.values.slice(-o.window);
    const trend = o.trend && last !== undefined && recent.length >= 2 ? carriedTrend(recent, vt, last - ctx.step, !maximize) : undefined;
    const neighbours = maximize ? high + o.reach * (high - low) : low - o.reach * (high - low);
    const optimistic = trend === undefined ? neighbours : maximize ? Math.max(neighbours, trend) : Math.min(neighbours, trend);

    const all = [...outcomes.finished.map((j) => j.values[j.values.length - 1] as number), ...outcomes.departed].sort((a, b) => a - b);
    const cut = percentileOfSorted(all, maximize ? 100 * (1 - o.top_share) : 100 * o.top_share);
    const spread = percentileOfSorted(all, 75) - percentileOfSorted(all, 25);
    const limit = maximize ? cut - o.margin * spread : cut + o.margin * spread;
    if (!(maximize ? optimistic < limit : optimistic > limit)) return [];
    const name = describeObjective(judged);
    return [
      {
        rule: "cannot_reach_top",
        message:
          `final ${name} forecast ${fmt(low)} to ${fmt(high)} from the ${nearest.length} finished trials with the nearest curves; ` +
          `even ${fmt(optimistic)} misses the top ${fmt(o.top_share * 100)} % (${maximize ? "at least" : "at most"} ${fmt(limit)}, over ${all.length} trials that left the study)`,
        evidence: { indicator: `optimistic forecast of the final ${name}`, value: optimistic, threshold: limit },
      },
    ];
  }
}
