/**
 * The TensorFlow.js reporter: one callback in `model.fit` / `model.fitDataset` that
 * turns every epoch into an indicator payload (schemas/payload.v1.json).
 *
 * ```js
 * import * as tf from "@tensorflow/tfjs";           // or tfjs-node, tfjs-node-gpu, tfjs + wasm
 * import { tfjsReporter } from "bttackler/tfjs";
 * const reporter = tfjsReporter(tf, { onPayload: (p) => console.log(p.step, p.metrics) });
 * await model.fit(xs, ys, { epochs: 20, callbacks: [reporter] });
 * ```
 *
 * How it sees gradients: at train begin it wraps the model's optimizer's
 * `applyGradients` on that instance (compile() makes a new optimizer, so the wrap is
 * installed at every train begin and removed at train end). `fit`, `fitDataset` and
 * `trainOnBatch` all end in `applyGradients`, so every observed batch's exact
 * gradients are seen; statistics stay on the device (GradientTap) and are read once
 * per epoch. The user's `tf` namespace is used for everything, so whichever backend
 * they loaded (cpu, wasm, tfjs-node, tfjs-node-gpu) runs the same code.
 *
 * Callback lists: tfjs takes either class callbacks (a list whose first element is a
 * class instance) or plain objects. The reporter is a class instance, so it mixes with
 * `tf.callbacks.earlyStopping(...)` in any order; in a list of plain objects use
 * `reporter.plain` (with `model` given in the options), which has only the epoch and
 * train hooks, so that tfjs does not read the loss back after every batch.
 */
import type * as tfjs from "@tensorflow/tfjs";
import type { Measured, PayloadV1 } from "../diagnosis/types.js";
import { ActivationProbe } from "./activation-probe.js";
import { GradientTap, type NamedGradient, type TrackedLayer } from "./gradient-tap.js";

type TF = typeof tfjs;

/** What `onPayload` may answer: true or `{stop: true}` stops training after this epoch. */
export type PayloadDecision = void | undefined | boolean | { stop?: boolean };

export interface TfjsReporterOptions {
  /** The model, needed only with `reporter.plain` (class callbacks are given the model by tfjs). */
  model?: tfjs.LayersModel;
  /** Observe the gradients of every k-th batch of an epoch (the first batch always). Default 10. */
  sampleEvery?: number;
  /** Floor on ||W_start|| in update_ratio = ||W_end - W_start|| / max(||W_start||, floor). Default 1e-12. */
  updateRatioFloor?: number;
  /** Planned epochs, when tfjs does not tell (plain callbacks); class callbacks read `epochs` from fit. */
  maxSteps?: number;
  /**
   * A fixed batch of inputs run through the model once per epoch (at its end) to measure
   * the activations: act_zero_frac (share of a ReLU-like layer's units that output 0 on
   * every example of the batch) and act_saturated_frac (share of a sigmoid/tanh layer's
   * outputs whose pre-activation has |x| >= 5). Costs one forward pass per epoch; fit only.
   */
  probe?: tfjs.Tensor;
  /** Receives each epoch's payload; answering true or {stop: true} stops training. */
  onPayload?: (payload: PayloadV1) => PayloadDecision | Promise<PayloadDecision>;
}

export interface PlainReporterCallbacks {
  onTrainBegin: (logs?: tfjs.Logs) => Promise<void>;
  onEpochBegin: (epoch: number, logs?: tfjs.Logs) => Promise<void>;
  onEpochEnd: (epoch: number, logs?: tfjs.Logs) => Promise<void>;
  onTrainEnd: (logs?: tfjs.Logs) => Promise<void>;
}

export interface TfjsReporter {
  /** Every payload emitted so far, in order. */
  readonly payloads: PayloadV1[];
  /** The same reporter as a plain-object callback, for lists of plain objects. */
  readonly plain: PlainReporterCallbacks;
  /** Custom loops: one optimizer step with its gradients observed (`optimizer.minimize` with a tap); returns the loss. */
  step(lossFn: () => tfjs.Scalar, opts: { optimizer: tfjs.Optimizer; varList?: tfjs.Variable[] }): tfjs.Scalar;
  /** Custom loops that compute and apply gradients themselves: hand each batch's gradients over here. */
  observeGrads(grads: tfjs.NamedTensorMap | NamedGradient[]): void;
  /** Custom loops: ends epoch `epoch` with its metrics (train_loss, val_loss, ...), emits its payload, starts the next epoch; true = stop. */
  endEpoch(epoch: number, metrics?: Record<string, number>): Promise<boolean>;
  /** Custom loops: frees the statistics' tensors when training is over. */
  dispose(): void;
}

const METRIC_NAMES: Record<string, string> = {
  loss: "train_loss",
  acc: "train_acc",
  accuracy: "train_acc",
  val_acc: "val_acc",
  val_accuracy: "val_acc",
};

type OptimizerWithApply = tfjs.Optimizer & { applyGradients: tfjs.Optimizer["applyGradients"] };

function checkOptions(options: TfjsReporterOptions): Required<Pick<TfjsReporterOptions, "sampleEvery" | "updateRatioFloor">> {
  const sampleEvery = options.sampleEvery ?? 10;
  if (!Number.isInteger(sampleEvery) || sampleEvery < 1) {
    throw new TypeError(`bttackler tfjsReporter: sampleEvery must be an integer >= 1, got ${String(sampleEvery)}`);
  }
  const updateRatioFloor = options.updateRatioFloor ?? 1e-12;
  if (!(typeof updateRatioFloor === "number" && updateRatioFloor > 0 && Number.isFinite(updateRatioFloor))) {
    throw new TypeError(`bttackler tfjsReporter: updateRatioFloor must be a finite number > 0, got ${String(updateRatioFloor)}`);
  }
  if (options.maxSteps !== undefined && !(Number.isInteger(options.maxSteps) && options.maxSteps >= 1)) {
    throw new TypeError(`bttackler tfjsReporter: maxSteps must be an integer >= 1, got ${String(options.maxSteps)}`);
  }
  if (options.onPayload !== undefined && typeof options.onPayload !== "function") {
    throw new TypeError(`bttackler tfjsReporter: onPayload must be a function, got ${typeof options.onPayload}`);
  }
  return { sampleEvery, updateRatioFloor };
}

/** The layers to track, input side first: every layer with a kernel among its trainable weights. */
export function trackedLayers(model: tfjs.LayersModel): TrackedLayer[] {
  const out: TrackedLayer[] = [];
  for (const layer of model.layers) {
    const weights = layer.trainableWeights;
    const kernel = weights.find((w) => /kernel$/.test(w.originalName)) ?? weights.find((w) => w.shape.length >= 2);
    if (kernel === undefined) continue;
    const bias = weights.find((w) => /bias$/.test(w.originalName));
    // LayerVariable.read() gives the tf.Variable itself, whose name is the one gradients carry
    out.push({ name: layer.name, kernel: kernel.read() as tfjs.Variable, ...(bias ? { bias: bias.read() as tfjs.Variable } : {}) });
  }
  return out;
}

/**
 * The layers of a custom training loop, from its variables: variables named
 * `<layer>/<weight>` are grouped by `<layer>`, the first variable of rank >= 2 is the
 * kernel and a rank-1 variable the bias; a lone rank >= 2 variable is a layer of its own.
 * Order follows `variables` (give them input side first).
 */
export function layersFromVariables(variables: tfjs.Variable[]): TrackedLayer[] {
  const groups = new Map<string, tfjs.Variable[]>();
  for (const v of variables) {
    const cut = v.name.lastIndexOf("/");
    const layer = cut > 0 ? v.name.slice(0, cut) : v.name;
    groups.set(layer, [...(groups.get(layer) ?? []), v]);
  }
  const out: TrackedLayer[] = [];
  for (const [name, vars] of groups) {
    const kernel = vars.find((v) => v.rank >= 2);
    if (kernel === undefined) continue;
    const bias = vars.find((v) => v.rank === 1);
    out.push({ name, kernel, ...(bias ? { bias } : {}) });
  }
  return out;
}

function measured(x: number): Measured {
  return Number.isFinite(x) ? x : null;
}

/** The state behind both callback forms. */
class ReporterCore {
  readonly payloads: PayloadV1[] = [];
  model: tfjs.LayersModel | undefined;
  epochs: number | undefined;
  private tap: GradientTap | undefined;
  private probe: ActivationProbe | undefined;
  private unwrap: (() => void) | undefined;
  private batchInEpoch = 0;
  private epochStart = 0;
  private readonly sampleEvery: number;
  private readonly floor: number;

  constructor(
    private readonly tf: TF,
    private readonly options: TfjsReporterOptions,
  ) {
    const checked = checkOptions(options);
    this.sampleEvery = checked.sampleEvery;
    this.floor = checked.updateRatioFloor;
    this.model = options.model;
  }

  trainBegin = async (): Promise<void> => {
    const model = this.model;
    if (model === undefined) {
      throw new Error("bttackler tfjsReporter: no model; pass {model} in the options when you use reporter.plain");
    }
    this.release();
    const layers = trackedLayers(model);
    this.tap = new GradientTap(this.tf, layers, this.floor);
    if (this.options.probe) this.probe = new ActivationProbe(this.tf, model, layers.map((l) => l.name), this.options.probe);
    const optimizer = model.optimizer as OptimizerWithApply;
    const own = Object.prototype.hasOwnProperty.call(optimizer, "applyGradients");
    const previous = optimizer.applyGradients;
    const tap = this.tap;
    optimizer.applyGradients = (grads: tfjs.NamedTensorMap | NamedGradient[]): void => {
      if (this.batchInEpoch++ % this.sampleEvery === 0) tap.observe(grads);
      previous.call(optimizer, grads);
    };
    this.unwrap = () => {
      if (own) optimizer.applyGradients = previous;
      else delete (optimizer as Partial<OptimizerWithApply>).applyGradients;
    };
  };

  epochBegin = async (): Promise<void> => {
    this.batchInEpoch = 0;
    this.epochStart = performance.now();
    this.tap?.snapshot();
  };

  epochEnd = async (epoch: number, logs?: tfjs.Logs): Promise<boolean> => {
    const tap = this.tap;
    if (tap === undefined) return false;
    // class callbacks get the epoch's logs as numbers or as scalar tensors: the tensors ride along in the one read
    const entries = Object.entries((logs ?? {}) as Record<string, number | tfjs.Tensor>);
    const tensors = entries.flatMap(([, v]) => (typeof v === "number" ? [] : [v]));
    const probed = this.probe?.run() ?? [];
    const stats = await tap.read([...tensors, ...probed.map((p) => p.value)]);
    this.tf.dispose(probed.map((p) => p.value));
    probed.forEach((p, i) => {
      const layer = stats.layers[p.index];
      if (layer) layer[p.field] = measured(stats.extra[tensors.length + i] as number);
    });
    const metrics: Record<string, Measured> = {};
    let nonFinite = stats.nonFinite;
    let next = 0;
    for (const [key, raw] of entries) {
      const value = typeof raw === "number" ? raw : (stats.extra[next++] as number);
      const name = METRIC_NAMES[key] ?? key;
      metrics[name] = measured(value);
      if (/loss$/.test(name) && !Number.isFinite(value)) nonFinite = true;
    }
    const maxSteps = this.epochs ?? this.options.maxSteps;
    const payload: PayloadV1 = {
      step: epoch,
      ...(maxSteps !== undefined ? { max_steps: maxSteps } : {}),
      metrics,
      layers: stats.layers,
      non_finite: nonFinite,
      seconds: (performance.now() - this.epochStart) / 1000,
    };
    this.payloads.push(payload);
    const decision = await this.options.onPayload?.(payload);
    const stop = decision === true || (typeof decision === "object" && decision?.stop === true);
    if (stop && this.model) this.model.stopTraining = true;
    return stop;
  };

  trainEnd = async (): Promise<void> => {
    this.release();
  };

  /** Custom loops: observes a batch's gradients (sampled like fit's), tracking the variables they name on first use. */
  observeGrads = (grads: tfjs.NamedTensorMap | NamedGradient[]): void => {
    if (this.tap === undefined) {
      const names = Array.isArray(grads) ? grads.map((g) => g.name) : Object.keys(grads);
      const registered = this.tf.engine().registeredVariables;
      this.startCustom(names.flatMap((n) => (registered[n] ? [registered[n] as tfjs.Variable] : [])));
    }
    if (this.batchInEpoch++ % this.sampleEvery === 0) this.tap?.observe(grads);
  };

  /** Custom loops: one optimizer step on `lossFn`, with its gradients observed; returns the loss. */
  step = (lossFn: () => tfjs.Scalar, opts: { optimizer: tfjs.Optimizer; varList?: tfjs.Variable[] }): tfjs.Scalar => {
    if (this.tap === undefined && opts.varList) this.startCustom(opts.varList);
    const { value, grads } = opts.optimizer.computeGradients(lossFn, opts.varList);
    this.observeGrads(grads);
    opts.optimizer.applyGradients(grads);
    this.tf.dispose(grads);
    return value;
  };

  /** Custom loops: ends an epoch with its metrics and emits its payload; resolves to true when training should stop. */
  endCustomEpoch = async (epoch: number, metrics: Record<string, number> = {}): Promise<boolean> => {
    const stop = await this.epochEnd(epoch, metrics as unknown as tfjs.Logs);
    await this.epochBegin();
    return stop;
  };

  private startCustom(variables: tfjs.Variable[]): void {
    this.release();
    const layers = this.model ? trackedLayers(this.model) : layersFromVariables(variables);
    this.tap = new GradientTap(this.tf, layers, this.floor);
    this.batchInEpoch = 0;
    this.epochStart = performance.now();
    this.tap.snapshot();
  }

  /** Custom loops: releases the statistics' tensors. */
  dispose = (): void => {
    this.release();
  };

  private release(): void {
    this.probe = undefined;
    this.unwrap?.();
    this.unwrap = undefined;
    this.tap?.dispose();
    this.tap = undefined;
  }
}

/** A reporter callback for `model.fit` / `fitDataset`, built on the caller's `tf` namespace. */
export function tfjsReporter(tf: TF, options: TfjsReporterOptions = {}): TfjsReporter & tfjs.Callback {
  const core = new ReporterCore(tf, options);
  class Reporter extends tf.Callback {
    readonly payloads = core.payloads;
    readonly plain: PlainReporterCallbacks = {
      onTrainBegin: core.trainBegin,
      onEpochBegin: core.epochBegin,
      onEpochEnd: async (epoch: number, logs?: tfjs.Logs) => {
        await core.epochEnd(epoch, logs);
      },
      onTrainEnd: core.trainEnd,
    };

    override setModel(model: tfjs.LayersModel): void {
      super.setModel(model);
      core.model = model;
    }

    override setParams(params: Parameters<tfjs.Callback["setParams"]>[0]): void {
      super.setParams(params);
      const epochs = params.epochs;
      core.epochs = typeof epochs === "number" ? epochs : undefined;
    }

    override async onTrainBegin(): Promise<void> {
      await core.trainBegin();
    }

    override async onEpochBegin(): Promise<void> {
      await core.epochBegin();
    }

    override async onEpochEnd(epoch: number, logs?: tfjs.Logs): Promise<void> {
      await core.epochEnd(epoch, logs);
    }

    override async onTrainEnd(): Promise<void> {
      await core.trainEnd();
    }

    step(lossFn: () => tfjs.Scalar, opts: { optimizer: tfjs.Optimizer; varList?: tfjs.Variable[] }): tfjs.Scalar {
      return core.step(lossFn, opts);
    }

    observeGrads(grads: tfjs.NamedTensorMap | NamedGradient[]): void {
      core.observeGrads(grads);
    }

    endEpoch(epoch: number, metrics?: Record<string, number>): Promise<boolean> {
      return core.endCustomEpoch(epoch, metrics);
    }

    dispose(): void {
      core.dispose();
    }
  }
  return new Reporter();
}
