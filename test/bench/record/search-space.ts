/**
 * The search space of the recorded traces, modelled on the Cifar10CNN space of the
 * BTTackler paper so that real bad regions exist (exploding and vanishing starts,
 * saturated sigmoid/tanh, dead ReLUs, too-small and too-large learning rates, crushing
 * weight decay) next to good ones:
 *
 * | name          | values                                                                   |
 * | ------------- | ------------------------------------------------------------------------ |
 * | lr            | log-uniform 1e-4 – 0.4                                                   |
 * | optimizer     | sgd, momentum (0.9), adam, rmsprop, adagrad                              |
 * | activation    | relu, elu, selu, sigmoid, tanh (of every hidden layer)                   |
 * | batch_size    | 32, 64, 128, 256                                                         |
 * | batch_norm    | on / off (after each hidden layer's activation)                          |
 * | dropout       | uniform 0 – 0.9 (after each hidden layer)                                |
 * | weight_decay  | 0 with probability 0.2, else log-uniform 1e-6 – 1e-2 (L2 on every kernel) |
 * | width         | 32, 64, 128, 256, 512 units per hidden layer                             |
 * | depth         | 1 – 4 hidden layers                                                      |
 * | init_scale    | log-uniform 0.01 – 10: every kernel ~ N(0, (init_scale · √(2 / fan_in))²) |
 *
 * init_scale 1 is He initialisation; 0.01 shrinks every layer's signal ~100-fold
 * (vanishing), 10 grows it ~10-fold per layer (exploding, saturating).
 * Every parameter is drawn on every call, in this order, so the stream of draws does not
 * depend on earlier outcomes.
 */
import type { Prng } from "./prng.js";

/** Bumped whenever a range or a choice below changes: traces of different spaces must not share a file. */
export const SEARCH_SPACE_VERSION = 1;

export const OPTIMIZERS = ["sgd", "momentum", "adam", "rmsprop", "adagrad"] as const;
export const ACTIVATIONS = ["relu", "elu", "selu", "sigmoid", "tanh"] as const;
export const BATCH_SIZES = [32, 64, 128, 256] as const;
export const WIDTHS = [32, 64, 128, 256, 512] as const;
export const MODEL_KINDS = ["mlp", "cnn"] as const;

export type OptimizerName = (typeof OPTIMIZERS)[number];
export type ActivationName = (typeof ACTIVATIONS)[number];
export type ModelKind = (typeof MODEL_KINDS)[number];

/** One trial's hyperparameters, as written to the trace. */
export interface TrialConfig {
  model: ModelKind;
  lr: number;
  optimizer: OptimizerName;
  activation: ActivationName;
  batch_size: number;
  batch_norm: boolean;
  dropout: number;
  weight_decay: number;
  width: number;
  depth: number;
  init_scale: number;
}

export const SEARCH_SPACE = {
  lr: { logUniform: [1e-4, 0.4] },
  optimizer: { choice: OPTIMIZERS },
  activation: { choice: ACTIVATIONS },
  batch_size: { choice: BATCH_SIZES },
  batch_norm: { choice: [false, true] },
  dropout: { uniform: [0, 0.9] },
  weight_decay: { zeroProbability: 0.2, logUniform: [1e-6, 1e-2] },
  width: { choice: WIDTHS },
  depth: { integer: [1, 4] },
  init_scale: { logUniform: [0.01, 10] },
} as const;

export function sampleConfig(prng: Prng, model: ModelKind = "mlp"): TrialConfig {
  const s = SEARCH_SPACE;
  const lr = prng.logUniform(...s.lr.logUniform);
  const optimizer = prng.choice(s.optimizer.choice);
  const activation = prng.choice(s.activation.choice);
  const batchSize = prng.choice(s.batch_size.choice);
  const batchNorm = prng.choice(s.batch_norm.choice);
  const dropout = prng.uniform(...s.dropout.uniform);
  const decayIsZero = prng.next() < s.weight_decay.zeroProbability;
  const decay = prng.logUniform(...s.weight_decay.logUniform);
  const width = prng.choice(s.width.choice);
  const depth = prng.integer(...s.depth.integer);
  const initScale = prng.logUniform(...s.init_scale.logUniform);
  return {
    model,
    lr,
    optimizer,
    activation,
    batch_size: batchSize,
    batch_norm: batchNorm,
    dropout,
    weight_decay: decayIsZero ? 0 : decay,
    width,
    depth,
    init_scale: initScale,
  };
}
