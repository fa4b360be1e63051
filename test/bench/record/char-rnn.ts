/**
 * The "char-rnn" task of the recorded traces: a recurrent next-character model on Moby-Dick
 * (text-data.ts): at every one of the WINDOW positions it predicts the next character.
 * Loss-only objective: the payloads carry train_loss and val_loss
 * (categorical cross-entropy, nats) and no accuracy, and HPO minimizes val_loss.
 * Trained on the native "tensorflow" backend (tfjs-node).
 *
 * | name             | values                                                                    |
 * | ---------------- | ------------------------------------------------------------------------- |
 * | lr               | log-uniform 1e-4 – 1                                                      |
 * | optimizer        | sgd, momentum (0.9), adam, rmsprop, adagrad                               |
 * | cell             | lstm, gru, simple (a plain tanh/relu/sigmoid RNN: vanishes and explodes) |
 * | activation       | tanh, relu, sigmoid (the cell's output activation)                        |
 * | units            | 16, 32, 64, 128 per recurrent layer                                       |
 * | depth            | 1 – 2 recurrent layers                                                    |
 * | batch_size       | 64, 128, 256                                                              |
 * | dropout          | uniform 0 – 0.6 (after each recurrent layer)                              |
 * | weight_decay     | 0 with probability 0.2, else log-uniform 1e-6 – 1e-2 (L2 on every kernel)  |
 * | init_scale       | log-uniform 0.01 – 10: input kernels ~ N(0, (init_scale · √(2 / fan_in))²) |
 * | recurrent_scale  | log-uniform 0.1 – 10: recurrent kernels orthogonal × recurrent_scale      |
 *
 * A recurrent kernel with gain > 1 explodes through time and < 1 forgets; relu cells blow up;
 * sigmoid outputs saturate; lr near 1 diverges for most optimizers; 1e-4 barely moves.
 * Layer names are fixed (rnn1, rnn2, logits). Every parameter is drawn on every call, in order.
 */
import type * as tfjs from "@tensorflow/tfjs";
import { compileWith, heInit } from "./model.js";
import { mixSeed, type Prng } from "./prng.js";
import { OPTIMIZERS, type OptimizerName } from "./search-space.js";
import { VOCABULARY, WINDOW } from "./text-data.js";

/** Bumped whenever a range or a choice below changes. */
export const CHAR_RNN_SPACE_VERSION = 1;

export const CELLS = ["lstm", "gru", "simple"] as const;
export const RNN_ACTIVATIONS = ["tanh", "relu", "sigmoid"] as const;
export type CellName = (typeof CELLS)[number];
export type RnnActivationName = (typeof RNN_ACTIVATIONS)[number];

export interface CharRnnConfig {
  model: "char-rnn";
  lr: number;
  optimizer: OptimizerName;
  cell: CellName;
  activation: RnnActivationName;
  units: number;
  depth: number;
  batch_size: number;
  dropout: number;
  weight_decay: number;
  init_scale: number;
  recurrent_scale: number;
}

export const CHAR_RNN_SPACE = {
  lr: { logUniform: [1e-4, 1] },
  optimizer: { choice: OPTIMIZERS },
  cell: { choice: CELLS },
  activation: { choice: RNN_ACTIVATIONS },
  units: { choice: [16, 32, 64, 128] },
  depth: { integer: [1, 2] },
  batch_size: { choice: [64, 128, 256] },
  dropout: { uniform: [0, 0.6] },
  weight_decay: { zeroProbability: 0.2, logUniform: [1e-6, 1e-2] },
  init_scale: { logUniform: [0.01, 10] },
  recurrent_scale: { logUniform: [0.1, 10] },
} as const;

export function sampleCharRnnConfig(prng: Prng): CharRnnConfig {
  const s = CHAR_RNN_SPACE;
  const lr = prng.logUniform(...s.lr.logUniform);
  const optimizer = prng.choice(s.optimizer.choice);
  const cell = prng.choice(s.cell.choice);
  const activation = prng.choice(s.activation.choice);
  const units = prng.choice(s.units.choice);
  const depth = prng.integer(...s.depth.integer);
  const batchSize = prng.choice(s.batch_size.choice);
  const dropout = prng.uniform(...s.dropout.uniform);
  const decayIsZero = prng.next() < s.weight_decay.zeroProbability;
  const decay = prng.logUniform(...s.weight_decay.logUniform);
  const initScale = prng.logUniform(...s.init_scale.logUniform);
  const recurrentScale = prng.logUniform(...s.recurrent_scale.logUniform);
  return {
    model: "char-rnn",
    lr,
    optimizer,
    cell,
    activation,
    units,
    depth,
    batch_size: batchSize,
    dropout,
    weight_decay: decayIsZero ? 0 : decay,
    init_scale: initScale,
    recurrent_scale: recurrentScale,
  };
}

/** [WINDOW, 36] one-hot characters → depth × [cell(units), every step's output → Dropout?] → Dense(36, softmax) at every step. */
export function buildCharRnn(tf: typeof tfjs, config: CharRnnConfig, initSeed: number): tfjs.LayersModel {
  const kernel = heInit(tf, config, initSeed);
  const layers: tfjs.layers.Layer[] = [];
  for (let d = 1; d <= config.depth; d++) {
    const options = {
      name: `rnn${d}`,
      ...(d === 1 ? { inputShape: [WINDOW, VOCABULARY.length] } : {}),
      units: config.units,
      activation: config.activation,
      returnSequences: true,
      recurrentInitializer: tf.initializers.orthogonal({ gain: config.recurrent_scale, seed: mixSeed(initSeed, 1000 + d) || 1 }),
      ...kernel(),
    };
    layers.push(config.cell === "lstm" ? tf.layers.lstm(options) : config.cell === "gru" ? tf.layers.gru(options) : tf.layers.simpleRNN(options));
    if (config.dropout > 0) layers.push(tf.layers.dropout({ name: `rnn${d}_dropout`, rate: config.dropout }));
  }
  layers.push(tf.layers.dense({ name: "logits", units: VOCABULARY.length, activation: "softmax", ...kernel() }));
  const model = tf.sequential({ layers });
  compileWith(tf, model, config, "categoricalCrossentropy", []);
  return model;
}
