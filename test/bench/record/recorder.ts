/**
 * The trace recorder: trains trials 0..N-1 of a seeded random search and appends one
 * bttackler.trace.v1 line per trial (see src/replay/trace-format.ts) to a JSON lines file.
 *
 * - Seeded: trial i's config, initial weights, batch order and dropout masks come from
 *   (seed, i) only (separate PRNG streams; tfjs's own Math.random draws are redirected to
 *   the trial's stream while it trains), so a rerun reproduces every config and, on the
 *   same backend, the training.
 * - Resumable: the trials already in the file are skipped; a last line cut short by a kill
 *   is cut off before appending. A file recorded with other settings is refused. When the
 *   file is missing but its `.gz` exists, recording continues from the compressed copy.
 * - Never stops a trial: every planned epoch is recorded, NaN ones too.
 */
import { existsSync, readFileSync, readdirSync, renameSync, statSync, truncateSync, unlinkSync, writeFileSync, appendFileSync, mkdirSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { gunzipSync, gzipSync } from "node:zlib";
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-wasm";
import type { PayloadV1 } from "../../../src/diagnosis/types.js";
import { tfjsReporter } from "../../../src/reporter/tfjs-reporter.js";
import { validatePayload } from "../../../src/schema/validate.js";
import { loadNativeBackend, NATIVE_BACKEND } from "../../tfjs-node.js";
import { loadMnistSplit, PIXELS, type SplitSizes } from "./data.js";
import { Prng, STREAMS, streamSeed, withSeededMathRandom } from "./prng.js";
import { IMAGE_MODELS, TASKS, type AnyTrialConfig, type BackendName, type TaskKind } from "./tasks.js";
import { loadTextSplit, VOCABULARY, WINDOW } from "./text-data.js";
import { TRACE_FORMAT, parseTraces as parseAnyTraces, settingsOf, type TraceEpoch, type TraceSettings as AnyTraceSettings, type TraceStatus, type TraceTask, type TraceTrial as AnyTraceTrial } from "../../../src/replay/trace-format.js";

type TraceSettings = AnyTraceSettings<TaskKind>;
type TraceTrial = AnyTraceTrial<AnyTrialConfig, TaskKind>;
const parseTraces = (text: string, source: string) => parseAnyTraces<AnyTrialConfig, TaskKind>(text, source);

export type { BackendName };

export interface RecordOptions {
  /** Trials 0..trials-1 are recorded (those already in `out` are skipped). */
  trials: number;
  epochs: number;
  seed: number;
  out: string;
  backend: BackendName;
  model: TaskKind;
  split: SplitSizes;
  /** Train examples run through the model once per epoch for the activation fields. */
  probe: number;
  /** The reporter's sampleEvery. */
  sampleEvery: number;
  /** Also write `<out>.gz` when done (after merging every shard file into `out`). */
  compress: boolean;
  /**
   * Shard `index` of `count` records only the trials i with i % count === index, into its own
   * file (shardPath); run one per core. Default: the single shard 0 of 1, writing to `out`.
   */
  shard?: { index: number; count: number };
  /** Progress lines (default: none). */
  log?: (line: string) => void;
}

export interface RecordSummary {
  /** Trials in the file before this run. */
  resumed: number;
  /** Trials recorded by this run. */
  recorded: number;
  /** Payloads of this run that failed schemas/payload.v1.json. */
  schemaFailures: number;
  /** Bytes of a cut-short last line that were removed. */
  discardedBytes: number;
  compressedPath?: string;
  seconds: number;
}

function finiteOrNull(x: number | undefined): number | null {
  return x !== undefined && Number.isFinite(x) ? x : null;
}

const traceTasks = new Map<string, TraceTask>();

/** The task block of `options`' recording, computed once per task and split (char-rnn reads its text for it). */
function traceTaskOf(options: RecordOptions): TraceTask | undefined {
  const task = TASKS[options.model];
  if (task.traceTask === undefined) return undefined;
  const key = JSON.stringify([options.model, options.split]);
  let block = traceTasks.get(key);
  if (block === undefined) traceTasks.set(key, (block = task.traceTask(options.split)));
  return block;
}

function settings(options: RecordOptions): TraceSettings {
  const task = TASKS[options.model];
  const block = traceTaskOf(options);
  return {
    dataset: task.dataset,
    search_space: task.searchSpace,
    seed: options.seed,
    model: options.model,
    backend: options.backend,
    max_epochs: options.epochs,
    split: { ...options.split, seed: task.splitSeed },
    reporter: { sample_every: options.sampleEvery, probe: options.probe },
    ...(task.objective === "val_loss" ? { objective: "val_loss" as const } : {}),
    ...(block !== undefined ? { task: block } : {}),
  };
}

/** Where shard `index` of `count` appends: `x.jsonl` -> `x.shard-1-of-2.jsonl`; shard 0 of 1 is `out` itself. */
export function shardPath(out: string, shard: { index: number; count: number }): string {
  if (shard.count === 1) return out;
  return `${out.replace(/\.jsonl$/, "")}.shard-${shard.index}-of-${shard.count}.jsonl`;
}

/** Every shard file written next to `out` (any shard count). */
function shardFiles(out: string): string[] {
  const base = basename(out).replace(/\.jsonl$/, "");
  const dir = dirname(out);
  return readdirSync(dir)
    .filter((name) => name.startsWith(`${base}.shard-`) && name.endsWith(".jsonl"))
    .map((name) => join(dir, name));
}

/**
 * The trials in `file`; refuses other settings. A cut-short last line is cut off when `own`
 * (the file this run appends to) and ignored otherwise (another shard may be writing it).
 */
function readRecorded(file: string, expected: TraceSettings, own: boolean): { trials: TraceTrial[]; discardedBytes: number } {
  if (!existsSync(file)) return { trials: [], discardedBytes: 0 };
  const { trials, partialTailBytes } = parseTraces(readFileSync(file, "utf8"), file);
  if (own && partialTailBytes > 0) truncateSync(file, statSync(file).size - partialTailBytes);
  const want = JSON.stringify(expected);
  for (const t of trials) {
    const got = JSON.stringify(settingsOf(t));
    if (got !== want) throw new Error(`${file}: trial ${t.trial} was recorded with ${got}; this run would use ${want}. Use another --out.`);
  }
  return { trials, discardedBytes: own ? partialTailBytes : 0 };
}

/** The trial indices already in `out` or in any shard file next to it; `file` is this run's own. */
function existingTrials(out: string, file: string, expected: TraceSettings): { done: Set<number>; discardedBytes: number } {
  if (!existsSync(out) && existsSync(`${out}.gz`)) writeFileSync(out, gunzipSync(readFileSync(`${out}.gz`)));
  const files = [...new Set([out, file, ...shardFiles(out)])];
  const read = files.map((f) => readRecorded(f, expected, f === file));
  return {
    done: new Set(read.flatMap((r) => r.trials.map((t) => t.trial))),
    discardedBytes: read.reduce((sum, r) => sum + r.discardedBytes, 0),
  };
}

/** Moves every shard file's trials into `out` (sorted by trial, first copy kept) and removes the shard files. */
export function mergeShards(out: string, expected: TraceSettings): number {
  const shards = shardFiles(out);
  if (shards.length === 0) return 0;
  const byTrial = new Map<number, TraceTrial>();
  for (const file of [out, ...shards]) {
    for (const t of readRecorded(file, expected, true).trials) if (!byTrial.has(t.trial)) byTrial.set(t.trial, t);
  }
  const lines = [...byTrial.values()].sort((a, b) => a.trial - b.trial).map((t) => `${JSON.stringify(t)}\n`);
  writeFileSync(`${out}.tmp`, lines.join(""));
  renameSync(`${out}.tmp`, out);
  for (const file of shards) unlinkSync(file);
  return shards.length;
}

interface Tensors {
  xTrain: tf.Tensor;
  yTrain: tf.Tensor;
  xVal: tf.Tensor;
  yVal: tf.Tensor;
  xTest: tf.Tensor;
  /** mnist: the test labels as class indices (for accuracy); text: the one-hot test targets (for the loss). */
  testLabels: tf.Tensor;
  probe: tf.Tensor;
}

function makeTextTensors(options: RecordOptions): Tensors {
  const split = loadTextSplit(options.split);
  const v = VOCABULARY.length;
  const inputs = (set: { count: number; inputs: Float32Array }): tf.Tensor => tf.tensor(set.inputs, [set.count, WINDOW, v]);
  const targets = (set: { count: number; targets: Float32Array }): tf.Tensor => tf.tensor(set.targets, [set.count, WINDOW, v]);
  const xTrain = inputs(split.train);
  return {
    xTrain,
    yTrain: targets(split.train),
    xVal: inputs(split.val),
    yVal: targets(split.val),
    xTest: inputs(split.test),
    testLabels: targets(split.test),
    probe: tf.slice(xTrain, 0, Math.min(options.probe, split.train.count)),
  };
}

function makeTensors(options: RecordOptions): Tensors {
  if (TASKS[options.model].dataset === "moby-dick") return makeTextTensors(options);
  const split = loadMnistSplit(options.split);
  const shape = (n: number): number[] => (IMAGE_MODELS.includes(options.model) ? [n, 28, 28, 1] : [n, PIXELS]);
  const images = (set: { count: number; images: Float32Array }): tf.Tensor => tf.tensor(set.images, shape(set.count));
  const labels = (set: { count: number; labels: Float32Array }): tf.Tensor2D => tf.tensor2d(set.labels, [set.count, 10]);
  const xTrain = images(split.train);
  const probeCount = Math.min(options.probe, split.train.count);
  const yTest = labels(split.test);
  const testLabels = tf.argMax(yTest, 1) as tf.Tensor1D;
  yTest.dispose();
  return {
    xTrain,
    yTrain: labels(split.train),
    xVal: images(split.val),
    yVal: labels(split.val),
    xTest: images(split.test),
    testLabels,
    probe: tf.slice(xTrain, 0, probeCount),
  };
}

/**
 * Per epoch: the process's CPU time in the epoch (a cost that, unlike wall time, hardly
 * depends on what else runs on the machine; wasm and cpu compute on this one thread, the
 * tensorflow backend on TF_NUM_INTRAOP_THREADS threads) and the held-out test accuracy after
 * it, or the held-out test loss (`lossOnly`). Put it after the reporter in the callback list.
 */
class EpochCostAndHeldOutAccuracy extends tf.Callback {
  /** Test accuracy per epoch, or test loss when lossOnly. */
  readonly accuracies: (number | null)[] = [];
  readonly evalSeconds: number[] = [];
  readonly cpuSeconds: number[] = [];
  private cpuAtEpochBegin: NodeJS.CpuUsage = process.cpuUsage();

  constructor(
    private readonly x: tf.Tensor,
    private readonly labels: tf.Tensor,
    private readonly lossOnly = false,
  ) {
    super();
  }

  override async onEpochBegin(): Promise<void> {
    this.cpuAtEpochBegin = process.cpuUsage();
  }

  override async onEpochEnd(): Promise<void> {
    const cpu = process.cpuUsage(this.cpuAtEpochBegin);
    this.cpuSeconds.push((cpu.user + cpu.system) / 1e6);
    const start = performance.now();
    const model = this.model as unknown as tf.LayersModel;
    const accuracy = tf.tidy(() => {
      const output = model.predict(this.x, { batchSize: 1000 }) as tf.Tensor;
      if (this.lossOnly) return tf.mean(tf.metrics.categoricalCrossentropy(this.labels, output));
      return tf.mean(tf.cast(tf.equal(tf.argMax(output, 1), this.labels), "float32"));
    });
    const value = (await accuracy.data())[0];
    accuracy.dispose();
    this.accuracies.push(finiteOrNull(value));
    this.evalSeconds.push((performance.now() - start) / 1000);
  }
}

/** Trains one trial to the end and returns its trace line. */
async function recordTrial(index: number, options: RecordOptions, data: Tensors): Promise<TraceTrial> {
  const started = performance.now();
  const task = TASKS[options.model];
  const lossOnly = task.objective === "val_loss";
  const config: AnyTrialConfig = task.sample(new Prng(streamSeed(options.seed, index, STREAMS.config)));
  const trainingRandom = new Prng(streamSeed(options.seed, index, STREAMS.training));
  const payloads: PayloadV1[] = [];
  let schemaFailures = 0;
  let error: string | undefined;
  const heldOut = new EpochCostAndHeldOutAccuracy(data.xTest, data.testLabels, lossOnly);
  const tensorsBefore = tf.memory().numTensors;
  let model: tf.LayersModel | undefined;
  try {
    model = task.build(tf, config, streamSeed(options.seed, index, STREAMS.init));
    const reporter = tfjsReporter(tf, {
      probe: data.probe,
      sampleEvery: options.sampleEvery,
      onPayload: (payload) => {
        try {
          validatePayload(payload);
        } catch {
          schemaFailures++;
        }
        payloads.push(payload);
      },
    });
    const fitted = model;
    await withSeededMathRandom(trainingRandom, () =>
      fitted.fit(data.xTrain, data.yTrain, {
        epochs: options.epochs,
        batchSize: config.batch_size,
        validationData: [data.xVal, data.yVal],
        shuffle: true,
        verbose: 0,
        callbacks: [reporter, heldOut],
      }),
    );
  } catch (err) {
    error = err instanceof Error ? err.message : String(err);
  } finally {
    model?.optimizer?.dispose();
    model?.dispose();
  }
  const leaked = tf.memory().numTensors - tensorsBefore;
  // momentum trials leave 1: tfjs 4.22's MomentumOptimizer.dispose() skips the learning-rate scalar of its SGDOptimizer base
  if (leaked !== 0) options.log?.(`trial ${index}: ${leaked} tensors left behind`);
  const epochs: TraceEpoch[] = payloads.map((payload, i) => ({
    payload,
    test_acc: lossOnly ? null : (heldOut.accuracies[i] ?? null),
    ...(lossOnly ? { test_loss: heldOut.accuracies[i] ?? null } : {}),
    seconds: payload.seconds ?? 0,
    cpu_seconds: heldOut.cpuSeconds[i] ?? 0,
    eval_seconds: heldOut.evalSeconds[i] ?? 0,
  }));
  const firstNonFinite = payloads.findIndex((p) => p.non_finite === true || p.metrics?.train_loss === null);
  if (error === undefined && payloads.length < options.epochs) error = `training ended after ${payloads.length} of ${options.epochs} epochs`;
  const status: TraceStatus = error !== undefined ? "error" : firstNonFinite >= 0 ? "non_finite" : "ok";
  const last = epochs[epochs.length - 1];
  return {
    format: TRACE_FORMAT,
    ...settings(options),
    trial: index,
    config,
    epochs,
    status,
    first_non_finite_step: firstNonFinite >= 0 ? firstNonFinite : null,
    final: lossOnly
      ? { val_acc: null, test_acc: null, val_loss: finiteOrNull(last?.payload.metrics?.val_loss ?? undefined), test_loss: last?.test_loss ?? null }
      : { val_acc: finiteOrNull(last?.payload.metrics?.val_acc ?? undefined), test_acc: last?.test_acc ?? null },
    train_seconds: epochs.reduce((sum, e) => sum + e.seconds, 0),
    train_cpu_seconds: epochs.reduce((sum, e) => sum + e.cpu_seconds, 0),
    seconds: (performance.now() - started) / 1000,
    schema_failures: schemaFailures,
    ...(error !== undefined ? { error } : {}),
    recorded_at: new Date().toISOString(),
    tfjs: tf.version.tfjs,
    node: process.version,
  };
}

function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return "?";
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h > 0 ? `${h}h${String(m).padStart(2, "0")}m` : m > 0 ? `${m}m${String(s % 60).padStart(2, "0")}s` : `${s}s`;
}

/** Writes `<out>.gz` (gzip level 9) next to `out`, through a temporary file. */
export function compressTraces(out: string): string {
  const target = `${out}.gz`;
  writeFileSync(`${target}.tmp`, gzipSync(readFileSync(out), { level: 9 }));
  renameSync(`${target}.tmp`, target);
  return target;
}

export async function record(options: RecordOptions): Promise<RecordSummary> {
  const started = performance.now();
  if (IMAGE_MODELS.includes(options.model) && options.backend === "wasm") {
    throw new Error(`the ${options.model} needs --backend cpu or tensorflow: tfjs-backend-wasm 4.22 has no Conv2DBackpropFilter`);
  }
  mkdirSync(dirname(options.out), { recursive: true });
  const shard = options.shard ?? { index: 0, count: 1 };
  const file = shardPath(options.out, shard);
  const { done, discardedBytes } = existingTrials(options.out, file, settings(options));
  if (discardedBytes > 0) options.log?.(`${file}: cut off a partial last line (${discardedBytes} bytes)`);
  const todo = Array.from({ length: options.trials }, (_, i) => i).filter((i) => i % shard.count === shard.index && !done.has(i));
  options.log?.(
    `${file}: ${done.size} trials already recorded, ${todo.length} to go` +
      (shard.count > 1 ? ` in shard ${shard.index} of ${shard.count}` : "") +
      ` (${options.model} on ${options.backend}, ${options.epochs} epochs, seed ${options.seed})`,
  );
  let schemaFailures = 0;
  let recorded = 0;
  if (todo.length > 0) {
    if (options.backend === NATIVE_BACKEND) {
      const missing = await loadNativeBackend();
      if (missing !== undefined) throw new Error(missing);
    }
    if (!(await tf.setBackend(options.backend))) throw new Error(`tfjs backend ${options.backend} is not available`);
    await tf.ready();
    const data = makeTensors(options);
    try {
      for (const index of todo) {
        const trace = await recordTrial(index, options, data);
        appendFileSync(file, `${JSON.stringify(trace)}\n`);
        recorded++;
        schemaFailures += trace.schema_failures;
        const elapsed = (performance.now() - started) / 1000;
        const eta = (elapsed / recorded) * (todo.length - recorded);
        const acc = (x: number | null | undefined): string => (x === null || x === undefined ? "null" : x.toFixed(3));
        const final = TASKS[options.model].objective === "val_loss" ? `val loss ${acc(trace.final.val_loss)} test loss ${acc(trace.final.test_loss)}` : `val ${acc(trace.final.val_acc)} test ${acc(trace.final.test_acc)}`;
        options.log?.(
          `trial ${index + 1}/${options.trials} (${done.size + recorded} done): ${trace.status}, ${final}, ` +
            `${trace.seconds.toFixed(1)} s; elapsed ${formatDuration(elapsed)}, ETA ${formatDuration(eta)}` +
            (trace.schema_failures > 0 ? `; ${trace.schema_failures} schema failures` : "") +
            (trace.error !== undefined ? `; error: ${trace.error}` : ""),
        );
      }
    } finally {
      tf.dispose(Object.values(data));
    }
  }
  if (options.compress) {
    const merged = mergeShards(options.out, settings(options));
    if (merged > 0) options.log?.(`merged ${merged} shard files into ${options.out}`);
  }
  const compressedPath = options.compress ? compressTraces(options.out) : undefined;
  if (compressedPath !== undefined) options.log?.(`wrote ${compressedPath} (${(statSync(compressedPath).size / 1e6).toFixed(2)} MB)`);
  return { resumed: done.size, recorded, schemaFailures, discardedBytes, ...(compressedPath !== undefined ? { compressedPath } : {}), seconds: (performance.now() - started) / 1000 };
}
