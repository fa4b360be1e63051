/**
 * Types shared by the diagnosis engine and everything that feeds it.
 *
 * `PayloadV1` mirrors `schemas/payload.v1.json`; `StudyConfig` mirrors a fully
 * resolved `schemas/config.v1.json` (every default filled in). The schema files
 * are the contract; these interfaces are their TypeScript view.
 *
 * A non-finite number travels as `null` (JSON cannot carry NaN/Infinity). In
 * memory the engine also tolerates NaN/Infinity numbers and treats them exactly
 * like `null`. An absent field means "not measured": rules that need it stay silent.
 */

/** A measured number, or null for a non-finite value (NaN, +Infinity, -Infinity). */
export type Measured = number | null;

export interface LayerIndicators {
  /** Layer name, as the model calls it (not the variable name). */
  name?: string;
  /** Batch mean of mean |dL/dW| over the epoch. */
  grad_abs_mean?: Measured;
  /** Batch mean of the fraction of exactly-zero gradient entries. */
  grad_zero_frac?: Measured;
  /** Largest |dL/dW| seen in the epoch. */
  grad_abs_max?: Measured;
  /** Mean |W| at the end of the epoch. */
  weight_abs_mean?: Measured;
  /** ||W_end - W_start|| / max(||W_start||, floor) over the epoch. */
  update_ratio?: Measured;
  /** Fraction of the layer's units that output 0 on every example of the probe batch. */
  act_zero_frac?: Measured;
  /** Fraction of the layer's activations with |pre-activation| >= 5 on the probe batch (sigmoid/tanh layers). */
  act_saturated_frac?: Measured;
  /** Fraction of the layer's units whose bias gradient was exactly 0 in every sampled batch of the epoch. */
  bias_grad_zero_frac?: Measured;
}

export interface PayloadV1 {
  /** 0-based epoch index, increasing per trial. */
  step: number;
  /** Planned number of steps; overrides the study's `max_steps` for this trial. */
  max_steps?: number;
  /** Scalar metrics of the step (train_loss, val_loss, train_acc, val_acc, anything else). */
  metrics?: Record<string, Measured>;
  /** Weighted layers, input side first. */
  layers?: LayerIndicators[];
  /** True when any NaN/Inf was seen in loss, gradients or weights during the step. */
  non_finite?: boolean;
  /** Wall time of the step in seconds. */
  seconds?: Measured;
}

export type TrialEndState = "complete" | "pruned" | "failed";

export type SymptomCode =
  | "NF"
  | "EG"
  | "VG"
  | "DR"
  | "SC"
  | "HO"
  | "OF"
  | "NMG"
  | "DIV"
  | "UWR"
  | "SAT"
  | "DEAD"
  | "LAG"
  | "PROG";

export const SYMPTOM_CODES: readonly SymptomCode[] = [
  "NF",
  "EG",
  "VG",
  "DR",
  "SC",
  "HO",
  "OF",
  "NMG",
  "DIV",
  "UWR",
  "SAT",
  "DEAD",
  "LAG",
  "PROG",
];

/** The numbers behind a symptom. `value` is null when the offending value is non-finite. */
export interface Evidence {
  indicator: string;
  value: Measured;
  threshold: number;
  layer?: string;
}

/**
 * What happened to a detected symptom at this step:
 * - `stop`: it persisted long enough and the trial is not protected from it;
 * - `watch`: detected, but it has not yet persisted for `persistence` consecutive checks;
 * - `protected`: persisted, but the trial is protected by the cohort and the rule is protectable;
 * - `last_step`: persisted at the trial's last planned step (max_steps - 1), where a stop
 *   would save no training and only throw the finished result away (every family but NF).
 */
export type SymptomAction = "stop" | "watch" | "protected" | "last_step";

export interface Symptom {
  code: SymptomCode;
  /** Which sub-rule of the family fired, e.g. `grad_median_high`. */
  rule: string;
  /** One human sentence with the numbers in it. */
  message: string;
  evidence: Evidence;
  action: SymptomAction;
  /** Consecutive checks (including this one) in which the family was detected. */
  count: number;
  /** Consecutive checks the family needs before it may stop the trial. */
  persistence: number;
}

export interface Verdict {
  trial: string;
  step: number;
  stop: boolean;
  /** True once the trial's protection metric has been in the cohort's best percentile. */
  protected: boolean;
  /** Symptoms detected at this step (stop, watch or protected). */
  symptoms: Symptom[];
  /** One line explaining a stop; absent when `stop` is false. */
  reason?: string;
  /** The step at which the trial was stopped, when it was stopped at or before this step. */
  stopped_at?: number;
}

/* ---------------------------------------------------------------- config */

export type Direction = "minimize" | "maximize";

/** Fractions of max_steps: a rule applies when floor(start*max_steps) <= step < floor(end*max_steps) (end = 1 includes overruns). */
export interface StageWindow {
  start: number;
  end: number;
}

/** Options every rule has. */
export interface RuleOptions {
  enabled: boolean;
  stage: StageWindow;
  /** First 0-based step at which the rule may be checked. */
  min_step: number;
  /** Consecutive detections needed before a stop. */
  persistence: number;
  /** Whether cohort protection shields a trial from this rule. */
  protectable: boolean;
}

/** The options of a rule whose symptom needs its effect on the loss: a trial still making progress is not confirmed. */
export interface ProgressGuardOptions {
  /** The loss whose fall is progress (minimized), e.g. train_loss. */
  progress_metric: string;
  /** Steps over which the fall is measured. */
  progress_window: number;
  /** The relative fall over the window at or above which the trial is making progress. */
  progress_min: number;
}

export interface NonFiniteOptions extends RuleOptions {
  /** Metric names whose non-finite value is ignored (e.g. an optional score that may legitimately be NaN). */
  ignore_metrics: string[];
}

export interface ExplodingGradientOptions extends RuleOptions {
  grad_median_max: number;
  ratio_median_max: number;
}

export interface VanishingGradientOptions extends RuleOptions, ProgressGuardOptions {
  grad_median_min: number;
  ratio_median_min: number;
  zero_layer_grad: boolean;
}

export interface DyingReluOptions extends RuleOptions {
  zero_frac_median_max: number;
  exclude_input_layer: boolean;
}

export interface SlowConvergenceOptions extends RuleOptions {
  metric: string;
  val_metric: string;
  early_cv_min: number;
  early_min_points: number;
  /** Whether the early check (flat_curve) also runs on val_metric. */
  early_val_check: boolean;
  /** The val curve is not checked while the train loss lies more than this fraction below the val loss (train learns, val lags). */
  early_val_gap: number;
  /** The val curve's wait (early_val_gap) ends at step floor(early_val_lag_until * max_steps). */
  early_val_lag_until: number;
  /** Steps over which a curve's fall is measured; a curve that fell by early_progress_min or more over them is not flat. */
  early_progress_window: number;
  early_progress_min: number;
  /**
   * A curve is called flat only when at least this share of the study's trials at the step
   * (peers, src/diagnosis/peers.ts) have a lower value: a trial ahead of most of its study is
   * not stuck, however slowly it moves. 0 turns the comparison off.
   */
  early_behind_share_min: number;
  /** Peers needed at the step for the comparison; with fewer, the curve alone decides. */
  early_min_peers: number;
  late_min_points: number;
  /** Where the late check starts, as a fraction of max_steps. */
  late_start: number;
  /** Whether the late check (late_cv_rising) runs at all; off by default. */
  late_check: boolean;
}

export interface OscillationOptions extends RuleOptions {
  metrics: string[];
  window: number;
  relative_slope_min: number;
  cv_min: number;
}

export interface OverfittingOptions extends RuleOptions {
  val_metric: string;
  train_metric: string;
  patience: number;
  rise_ratio: number;
}

export interface NoMoreGainOptions extends RuleOptions {
  metrics: string[];
  window: number;
}

export interface DivergenceOptions extends RuleOptions {
  metrics: string[];
  factor: number;
}

export interface UpdateRatioOptions extends RuleOptions, ProgressGuardOptions {
  median_max: number;
  median_min: number;
}

export interface SaturationOptions extends RuleOptions {
  saturated_frac_median_max: number;
  exclude_output_layer: boolean;
}

export interface DeadUnitOptions extends RuleOptions, ProgressGuardOptions {
  dead_frac_median_max: number;
  exclude_output_layer: boolean;
  /** From this median dead share on, the progress guard does not apply (the hidden layers cannot learn). */
  unguarded_from: number;
}

export interface LaggingOptions extends RuleOptions {
  /** "objective" (the study's objective, src/diagnosis/objective.ts) or a metric name. */
  metric: string;
  /** "auto": the objective's direction, or for a named metric the one its name implies. */
  direction: Direction | "auto";
  /** Fires when more than this share of the peers did strictly better. */
  max_better_share: number;
  /** Peers needed before the rule judges. */
  min_cohort: number;
}

export interface PrognosisOptions extends RuleOptions {
  /** "objective" (the study's objective) or a metric name. */
  metric: string;
  /** "auto": the objective's direction, or for a named metric the one its name implies. */
  direction: Direction | "auto";
  /** Finished trials whose forecasts make the interval. */
  neighbors: number;
  /** The trial's last steps over which curves are compared. */
  window: number;
  /** The top share of the study that a trial must be able to reach. */
  top_share: number;
  /** Finished trials needed before the rule judges. */
  min_finished: number;
  /** Trials that have left the study (finished, stopped, pruned) needed before the rule judges. */
  min_outcomes: number;
  /** How far the optimistic forecast must miss the cut, in interquartile ranges of the outcomes. */
  margin: number;
  /** How far past the best neighbour the optimistic forecast reaches, as a share of the forecast interval's width. */
  reach: number;
  /** Whether the trial's own trend, carried on to its last planned step, also bounds the optimistic forecast. */
  trend: boolean;
  /** The rule waits while train_metric < (1 - val_gap) * val_metric at the step (validation lags training); 1 turns this off. */
  train_metric: string;
  val_metric: string;
  val_gap: number;
  /** The wait for a lagging validation ends at step floor(val_lag_until * max_steps); without max_steps it never ends. */
  val_lag_until: number;
}

export interface RulesConfig {
  NF: NonFiniteOptions;
  EG: ExplodingGradientOptions;
  VG: VanishingGradientOptions;
  DR: DyingReluOptions;
  SC: SlowConvergenceOptions;
  HO: OscillationOptions;
  OF: OverfittingOptions;
  NMG: NoMoreGainOptions;
  DIV: DivergenceOptions;
  UWR: UpdateRatioOptions;
  SAT: SaturationOptions;
  DEAD: DeadUnitOptions;
  LAG: LaggingOptions;
  PROG: PrognosisOptions;
}

export interface ProtectionConfig {
  enabled: boolean;
  metric: string;
  direction: Direction;
  /** A trial is protected when its metric is within this best percentile of the cohort at its step. */
  percentile: number;
  /** Cohort values needed at a step before anyone can be protected. */
  min_cohort: number;
}

/** What says how good a trial is (src/diagnosis/objective.ts). */
export interface ObjectiveConfig {
  /** "auto" (val_acc, else val_loss, else train_loss) or a metric name tried before those. */
  metric: string;
  /** "auto": read from the metric's name. */
  direction: Direction | "auto";
}

export interface StudyConfig {
  /** Planned steps per trial when payloads do not say; null = unknown (staged rules then stay silent). */
  max_steps: number | null;
  objective: ObjectiveConfig;
  protection: ProtectionConfig;
  rules: RulesConfig;
}
