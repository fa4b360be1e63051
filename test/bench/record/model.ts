/**
 * Builds and compiles one trial's network from its TrialConfig.
 *
 * MLP: 784 → depth × [Dense(width, activation) → BatchNorm? → Dropout?] → Dense(10, softmax).
 * CNN (cpu backend only; wasm has no Conv2DBackpropFilter): 28×28×1 → Conv2D(8, 3×3,
 * activation) → BatchNorm? → MaxPool 2×2 → Flatten → the MLP's hidden layers → Dense(10, softmax).
 * Batch norm comes after the activation so that the reporter's activation probe sees each
 * weighted layer's own activation (it reads the activation off the Dense/Conv layer).
 * Every kernel: variance scaling (fan in, truncated normal) with scale 2·init_scale², i.e.
 * He initialisation times init_scale; an L2 regulariser weight_decay·Σw² when > 0. Biases start at 0.
 * Layer names are fixed (hidden1..hiddenN, conv1, logits), so traces name layers alike.
 */
import type * as tfjs from "@tensorflow/tfjs";
import { mixSeed } from "./prng.js";
import type { OptimizerName, TrialConfig } from "./search-space.js";

type TF = typeof tfjs;

export const MOMENTUM = 0.9;
export const CNN_FILTERS = 8;

export function optimizer(tf: TF, name: OptimizerName, lr: number): tfjs.Optimizer {
  switch (name) {
    case "sgd":
      return tf.train.sgd(lr);
    case "momentum":
      return tf.train.momentum(lr, MOMENTUM);
    case "adam":
      return tf.train.adam(lr);
    case "rmsprop":
      return tf.train.rmsprop(lr);
    case "adagrad":
      return tf.train.adagrad(lr);
  }
}

/**
 * The kernel settings of one weighted layer after another: He initialisation times init_scale
 * (seeded per layer from `initSeed`), and L2 weight_decay when > 0. Call once per layer, in order.
 */
export function heInit(tf: TF, config: { init_scale: number; weight_decay: number }, initSeed: number): () => { kernelInitializer: ReturnType<TF["initializers"]["varianceScaling"]>; kernelRegularizer?: ReturnType<TF["regularizers"]["l2"]> } {
  let layerIndex = 0;
  return () => ({
    kernelInitializer: tf.initializers.varianceScaling({
      scale: 2 * config.init_scale * config.init_scale,
      mode: "fanIn",
      distribution: "normal",
      seed: mixSeed(initSeed, layerIndex++) || 1,
    }),
    ...(config.weight_decay > 0 ? { kernelRegularizer: tf.regularizers.l2({ l2: config.weight_decay }) } : {}),
  });
}

/** Compiles `model` with the config's optimizer and learning rate. */
export function compileWith(tf: TF, model: tfjs.LayersModel, config: { optimizer: OptimizerName; lr: number }, loss: string, metrics: string[]): void {
  model.compile({ optimizer: optimizer(tf, config.optimizer, config.lr), loss, metrics });
}

/** A compiled model for `config`; `initSeed` decides every initial weight. */
export function buildModel(tf: TF, config: TrialConfig, initSeed: number): tfjs.LayersModel {
  const kernel = heInit(tf, config, initSeed);
  const layers: tfjs.layers.Layer[] = [];
  const cnn = config.model === "cnn";
  if (cnn) {
    layers.push(tf.layers.conv2d({ name: "conv1", inputShape: [28, 28, 1], filters: CNN_FILTERS, kernelSize: 3, activation: config.activation, ...kernel() }));
    if (config.batch_norm) layers.push(tf.layers.batchNormalization({ name: "conv1_bn" }));
    layers.push(tf.layers.maxPooling2d({ name: "conv1_pool", poolSize: 2 }));
    layers.push(tf.layers.flatten({ name: "flatten" }));
  }
  for (let i = 1; i <= config.depth; i++) {
    layers.push(
      tf.layers.dense({ name: `hidden${i}`, ...(i === 1 && !cnn ? { inputShape: [784] } : {}), units: config.width, activation: config.activation, ...kernel() }),
    );
    if (config.batch_norm) layers.push(tf.layers.batchNormalization({ name: `hidden${i}_bn` }));
    if (config.dropout > 0) layers.push(tf.layers.dropout({ name: `hidden${i}_dropout`, rate: config.dropout }));
  }
  layers.push(tf.layers.dense({ name: "logits", units: 10, activation: "softmax", ...kernel() }));
  const model = tf.sequential({ layers });
  compileWith(tf, model, config, "categoricalCrossentropy", ["accuracy"]);
  return model;
}
