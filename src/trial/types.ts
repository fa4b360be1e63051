/**
 * The types of the trial SDK: what a training script sees (`Trial`, `TrialVerdict`,
 * `TrialOptions`) and what every host implements (`TrialHost`).
 */
import type { PayloadV1 } from "../diagnosis/types.js";

/** Where the trial runs, as detected from the environment (see detect.ts). */
export type TrialHostKind = "nni" | "optuna" | "standalone" | "local";

/** The answer to one report. `stop: true` means: stop training now; `reason` says why. */
export interface TrialVerdict {
  stop: boolean;
  reason?: string;
}

/** Hyperparameters: a JSON object. */
export type TrialParams = Record<string, unknown>;

/**
 * A final metric: a number (non-finite allowed), or, as NNI accepts it, an object
 * whose `default` is that number and whose other keys are shown alongside.
 */
export type FinalValue = number | { default: number; [key: string]: unknown };

/** Picks the number NNI shows and tunes on (`default`) from a payload; see nni-metric.ts. */
export type MetricPicker = (payload: PayloadV1) => number | null | undefined;

export interface TrialOptions {
  /**
   * NNI only: which number becomes `default` in each intermediate result. A metric name
   * of the payload (taken as is), or a function of the payload. Default: `val_acc`, else
   * `train_acc`, else minus `val_loss`, else minus `train_loss` (higher is better: run
   * the experiment with `optimize_mode: maximize`), chosen at the first report that has
   * one of them and kept for the rest of the trial.
   */
  metric?: string | MetricPicker;
  /**
   * Per-call timeout in milliseconds: each service call of the standalone host (connect
   * included) and each metric PUT to NNI. Default 2000.
   */
  timeoutMs?: number;
  /** Optuna relay only: how long to wait for the verdict line of a report, in ms. Default 10000. */
  relayTimeoutMs?: number;
  /** Where the host is read from. Default `process.env`. */
  env?: Record<string, string | undefined>;
  /** Install the SIGINT/SIGTERM handlers that set `shouldStop()`. Default true. */
  signals?: boolean;
  /** Receives the warnings (at most one per trial and kind of fault). Default: a line on standard error. */
  warn?: (message: string) => void;
}

/** What a training script holds: see trial.ts. */
export interface Trial {
  /** The detected host. */
  readonly host: TrialHostKind;
  /** The trial's identifier on its host (NNI trial job id, BTTACKLER_TRIAL, or a generated id). */
  readonly id: string;
  /** The hyperparameters of this trial (`{}` when the host gives none). */
  readonly params: TrialParams;
  /** Every payload reported so far, as validated (non-finite numbers are null), in order. */
  readonly reports: readonly PayloadV1[];
  /** The final value, once `final` was called. */
  readonly finalValue: FinalValue | undefined;
  /** Why the trial should stop (the verdict's reason, or the signal), once it should. */
  readonly stopReason: string | undefined;
  /**
   * Validates and sends one payload v1 (one per epoch) and answers the host's verdict.
   * Never fails because of the host or the network (it answers `{stop: false}` and warns
   * once); a payload that is not payload v1 rejects with a TypeError.
   */
  report(payload: unknown): Promise<TrialVerdict>;
  /** True once a report was answered stop, or the host asked to stop (SIGINT/SIGTERM). */
  shouldStop(): boolean;
  /**
   * `report`, answering stop also when `shouldStop()` is true: ready to be given as the
   * tfjs reporter's `onPayload` (`tfjsReporter(tf, {onPayload: t.onPayload})`).
   */
  readonly onPayload: (payload: unknown) => Promise<TrialVerdict>;
  /** Sends the final metric and releases the host's connection; the process may exit once it resolves. */
  final(value: FinalValue): Promise<void>;
  /** Removes the signal handlers and closes the host's connection (final does this too). */
  close(): void;
}

/** One host: how params arrive, where reports go, what a verdict is. Its methods never throw. */
export interface TrialHost {
  readonly kind: TrialHostKind;
  readonly id: string;
  readonly params: TrialParams;
  report(payload: PayloadV1): Promise<TrialVerdict>;
  /** `stopped`: the trial stopped early (a stop verdict or a signal). */
  final(value: FinalValue, stopped: boolean): Promise<void>;
  close(): void;
}

/** Reports an infrastructure fault; each `key` is warned about at most once per trial. */
export type Warn = (key: string, message: string) => void;

/** The resolved options every host is built with. */
export interface HostContext {
  env: Record<string, string | undefined>;
  timeoutMs: number;
  relayTimeoutMs: number;
  metric: string | MetricPicker | undefined;
  warn: Warn;
}
