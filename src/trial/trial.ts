/**
 * The trial SDK: one object per training run, the same on every host.
 *
 * ```js
 * import { trial as bttacklerTrial } from "bttackler";
 * const trial = await bttacklerTrial();          // detects its host (detect.ts)
 * const p = trial.params;                         // hyperparameters
 * const verdict = await trial.report(payload);    // payload v1 per epoch → {stop, reason?}
 * if (trial.shouldStop()) ...                     // stop verdict, or SIGINT/SIGTERM
 * await trial.final(value);                       // final metric; then the process may exit
 * ```
 *
 * With the tfjs reporter: `tfjsReporter(tf, {onPayload: trial.onPayload})` stops `fit` at
 * the end of the epoch whose verdict says stop, or after a stop signal.
 *
 * Guarantees: `report` validates the payload (schemas/payload.v1.json; NaN/±Infinity
 * become null) and rejects with a TypeError when it is not payload v1 — the caller's bug;
 * anything the host or the network does wrong answers `{stop: false}` with one warning on
 * standard error (fail open: the trial trains on as if unmonitored). Reports and the
 * final go to the host one at a time, in call order. The first SIGINT/SIGTERM only sets
 * `shouldStop()` (signals.ts); `close()` (or `final`) removes the handlers.
 */
import type { PayloadV1 } from "../diagnosis/types.js";
import { ValidationError, validatePayload } from "../schema/validate.js";
import { detectHost } from "./detect.js";
import { openLocalHost } from "./local-host.js";
import { openNniHost } from "./nni-host.js";
import { openRelayHost } from "./relay-host.js";
import { onStopSignal } from "./signals.js";
import { openStandaloneHost } from "./standalone-host.js";
import type { FinalValue, HostContext, Trial, TrialHost, TrialHostKind, TrialOptions, TrialParams, TrialVerdict, Warn } from "./types.js";

const DEFAULT_TIMEOUT_MS = 2000;
const DEFAULT_RELAY_TIMEOUT_MS = 10_000;

function checkFinalValue(value: unknown): FinalValue {
  if (typeof value === "number") return value;
  if (typeof value === "object" && value !== null && !Array.isArray(value) && typeof (value as { default?: unknown }).default === "number") {
    return value as FinalValue;
  }
  throw new TypeError(`bttackler trial.final: expected a number or an object with a numeric "default", got ${JSON.stringify(value) ?? String(value)}`);
}

function checkTimeout(name: string, value: number | undefined, fallback: number): number {
  const ms = value ?? fallback;
  if (!(typeof ms === "number" && Number.isFinite(ms) && ms > 0)) {
    throw new TypeError(`bttackler trial: ${name} must be a number of milliseconds > 0, got ${String(value)}`);
  }
  return ms;
}

class TrialImpl implements Trial {
  readonly reports: PayloadV1[] = [];
  finalValue: FinalValue | undefined;
  stopReason: string | undefined;
  private stopped = false;
  private finished = false;
  private closed = false;
  private queue: Promise<unknown> = Promise.resolve();
  private unsubscribe: (() => void) | undefined;

  constructor(
    private readonly backend: TrialHost,
    signals: boolean,
  ) {
    if (signals) this.unsubscribe = onStopSignal((signal) => this.stop(`${signal} received`));
  }

  get host(): TrialHostKind {
    return this.backend.kind;
  }

  get id(): string {
    return this.backend.id;
  }

  get params(): TrialParams {
    return this.backend.params;
  }

  shouldStop = (): boolean => this.stopped;

  report = async (payload: unknown): Promise<TrialVerdict> => {
    if (this.finished || this.closed) {
      throw new Error(`bttackler trial.report: the trial is ${this.finished ? "finished (final was called)" : "closed"}`);
    }
    let valid: PayloadV1;
    try {
      valid = validatePayload(payload);
    } catch (err) {
      if (err instanceof ValidationError) throw new TypeError(`bttackler trial.report: not a payload v1: ${err.message}`, { cause: err });
      throw err;
    }
    this.reports.push(valid);
    const verdict = await this.enqueue(() => this.backend.report(valid));
    if (verdict.stop) this.stop(verdict.reason ?? "stopped by the host");
    return verdict;
  };

  onPayload = async (payload: unknown): Promise<TrialVerdict> => {
    const verdict = await this.report(payload);
    if (verdict.stop || !this.stopped) return verdict;
    return { stop: true, ...(this.stopReason !== undefined ? { reason: this.stopReason } : {}) };
  };

  final = async (value: FinalValue): Promise<void> => {
    const checked = checkFinalValue(value);
    if (this.finished || this.closed) {
      throw new Error(`bttackler trial.final: the trial is ${this.finished ? "finished (final was called)" : "closed"}`);
    }
    this.finished = true;
    this.finalValue = checked;
    try {
      await this.enqueue(() => this.backend.final(checked, this.stopped));
    } finally {
      this.close();
    }
  };

  close = (): void => {
    this.closed = true;
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    this.backend.close();
  };

  private stop(reason: string): void {
    if (this.stopped) return;
    this.stopped = true;
    this.stopReason = reason;
  }

  private enqueue<T>(task: () => Promise<T>): Promise<T> {
    const next = this.queue.then(task);
    this.queue = next.catch(() => undefined);
    return next;
  }
}

function warner(sink: ((message: string) => void) | undefined): Warn {
  const seen = new Set<string>();
  const write = sink ?? ((message: string) => process.stderr.write(`${message}\n`));
  return (key, message) => {
    if (seen.has(key)) return;
    seen.add(key);
    try {
      write(`bttackler: ${message}`);
    } catch {
      /* a warning must never break the trial */
    }
  };
}

/**
 * Opens this process's trial on the host detected from the environment and gets its
 * hyperparameters. Rejects only on a configuration mistake (a malformed
 * BTTACKLER_PARAMS, BTTACKLER_URL or BTTACKLER_RELAY_FD, a non-HTTP NNI channel) or when
 * NNI cannot give the parameters.
 */
export async function trial(options: TrialOptions = {}): Promise<Trial> {
  const env = options.env ?? process.env;
  const warn = warner(options.warn);
  if (options.metric !== undefined && typeof options.metric !== "string" && typeof options.metric !== "function") {
    throw new TypeError(`bttackler trial: metric must be a metric name or a function, got ${typeof options.metric}`);
  }
  const ctx: HostContext = {
    env,
    timeoutMs: checkTimeout("timeoutMs", options.timeoutMs, DEFAULT_TIMEOUT_MS),
    relayTimeoutMs: checkTimeout("relayTimeoutMs", options.relayTimeoutMs, DEFAULT_RELAY_TIMEOUT_MS),
    metric: options.metric,
    warn,
  };
  const kind = detectHost(env);
  let host: TrialHost;
  switch (kind) {
    case "nni":
      host = await openNniHost(ctx);
      break;
    case "optuna":
      host = openRelayHost(ctx);
      break;
    case "standalone":
      host = openStandaloneHost(ctx);
      break;
    case "local":
      if (env.NNI_PLATFORM) {
        warn("nni-legacy", "NNI_PLATFORM is set but NNI_TRIAL_COMMAND_CHANNEL is not: only NNI 3.0's HTTP trial channel is supported; running without a host");
      }
      host = openLocalHost(ctx);
      break;
  }
  return new TrialImpl(host, options.signals ?? true);
}
