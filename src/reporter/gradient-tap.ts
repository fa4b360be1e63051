/**
 * Per-layer gradient and weight statistics, accumulated on the device.
 *
 * `observe` is called with a batch's exact gradients (what the optimizer is about to
 * apply) and adds, per tracked layer, mean|g|, the fraction of exactly-zero entries and
 * max|g| of the kernel gradient, and |g| of the bias gradient per unit, to variables
 * that live on the device — nothing is read back. `read` computes the epoch's figures
 * (including weight magnitudes and the update ratio against the kernels saved by
 * `snapshot`) and brings them to the host in ONE read, then resets the accumulators.
 * A NaN or Infinity anywhere in a gradient propagates into the sums, so the epoch's
 * single read also tells whether anything was non-finite.
 */
import type * as tfjs from "@tensorflow/tfjs";

type TF = typeof tfjs;

/** A gradient as `Optimizer.applyGradients` may receive it in a list. */
export interface NamedGradient {
  name: string;
  tensor: tfjs.Tensor;
}

/** A layer whose gradients are tracked: its kernel and, when it has one, its bias. */
export interface TrackedLayer {
  name: string;
  kernel: tfjs.Variable;
  bias?: tfjs.Variable;
}

export interface LayerEpochStats {
  name: string;
  grad_abs_mean?: number | null;
  grad_zero_frac?: number | null;
  grad_abs_max?: number | null;
  weight_abs_mean: number | null;
  update_ratio?: number | null;
  bias_grad_zero_frac?: number | null;
  act_zero_frac?: number | null;
  act_saturated_frac?: number | null;
}

export interface EpochStats {
  layers: LayerEpochStats[];
  /** The values of the `extra` scalars passed to `read`, in order. */
  extra: number[];
  /** Batches whose gradients were observed. */
  sampled: number;
  nonFinite: boolean;
}

interface Accumulator {
  layer: TrackedLayer;
  absMeanSum: tfjs.Variable;
  zeroFracSum: tfjs.Variable;
  absMax: tfjs.Variable;
  biasAbsSum?: tfjs.Variable;
  start?: tfjs.Tensor;
}

const FIELDS_PER_LAYER = 6;

export class GradientTap {
  private readonly acc: Accumulator[];
  private readonly byVariable = new Map<string, { acc: Accumulator; role: "kernel" | "bias" }>();
  private sampled = 0;

  constructor(
    private readonly tf: TF,
    layers: TrackedLayer[],
    private readonly updateRatioFloor: number,
  ) {
    const zeros = (like?: tfjs.Tensor): tfjs.Variable => tf.tidy(() => tf.variable(like ? tf.zerosLike(like) : tf.scalar(0), false));
    this.acc = layers.map((layer) => ({
      layer,
      absMeanSum: zeros(),
      zeroFracSum: zeros(),
      absMax: zeros(),
      ...(layer.bias ? { biasAbsSum: zeros(layer.bias) } : {}),
    }));
    for (const a of this.acc) {
      this.byVariable.set(a.layer.kernel.name, { acc: a, role: "kernel" });
      if (a.layer.bias) this.byVariable.set(a.layer.bias.name, { acc: a, role: "bias" });
    }
  }

  get layerCount(): number {
    return this.acc.length;
  }

  /** Saves the kernels at the start of an epoch, for the update ratio. */
  snapshot(): void {
    for (const a of this.acc) {
      a.start?.dispose();
      a.start = this.tf.keep(this.tf.clone(a.layer.kernel));
    }
  }

  /** Adds one batch's gradients (as the optimizer receives them) to the accumulators. */
  observe(grads: tfjs.NamedTensorMap | NamedGradient[]): void {
    const tf = this.tf;
    const entries: [string, tfjs.Tensor][] = Array.isArray(grads) ? grads.map((g) => [g.name, g.tensor]) : Object.entries(grads);
    this.sampled++;
    tf.tidy(() => {
      for (const [name, g] of entries) {
        const hit = this.byVariable.get(name);
        if (hit === undefined) continue;
        const a = hit.acc;
        const abs = tf.abs(g);
        if (hit.role === "kernel") {
          a.absMeanSum.assign(tf.add(a.absMeanSum, tf.mean(abs)));
          a.zeroFracSum.assign(tf.add(a.zeroFracSum, tf.mean(tf.cast(tf.equal(g, 0), "float32"))));
          a.absMax.assign(tf.maximum(a.absMax, tf.max(abs)));
        } else if (a.biasAbsSum) {
          a.biasAbsSum.assign(tf.add(a.biasAbsSum, abs));
        }
      }
    });
  }

  /**
   * The epoch's figures, in one device-to-host read that also carries the `extra`
   * scalars (e.g. the epoch's loss, which tfjs hands to callbacks as a tensor); resets
   * the accumulators.
   */
  async read(extra: tfjs.Tensor[] = []): Promise<EpochStats> {
    const tf = this.tf;
    const sampled = this.sampled;
    const n = Math.max(sampled, 1);
    const packed = tf.tidy(() => {
      const parts: tfjs.Tensor[] = [];
      for (const a of this.acc) {
        const w = a.layer.kernel;
        const startNorm = a.start ? tf.norm(a.start) : tf.scalar(NaN);
        const moved = a.start ? tf.norm(tf.sub(w, a.start)) : tf.scalar(NaN);
        parts.push(
          tf.div(a.absMeanSum, n),
          tf.div(a.zeroFracSum, n),
          a.absMax,
          tf.mean(tf.abs(w)),
          tf.div(moved, tf.maximum(startNorm, this.updateRatioFloor)),
          a.biasAbsSum ? tf.mean(tf.cast(tf.equal(a.biasAbsSum, 0), "float32")) : tf.scalar(-1),
        );
      }
      // a non-finite bias gradient shows up in its sum
      const biasSums = this.acc.flatMap((a) => (a.biasAbsSum ? [tf.sum(a.biasAbsSum)] : []));
      parts.push(biasSums.length > 0 ? tf.addN(biasSums) : tf.scalar(0));
      parts.push(...extra);
      return tf.stack(parts.map((p) => tf.cast(tf.reshape(p, []), "float32")));
    });
    const values = await packed.data();
    packed.dispose();
    const hadStart = this.acc.map((a) => a.start !== undefined);
    this.reset();
    const layers: LayerEpochStats[] = [];
    const base = this.acc.length * FIELDS_PER_LAYER;
    let nonFinite = !Number.isFinite(values[base] as number);
    this.acc.forEach((a, i) => {
      const v = (k: number): number => values[i * FIELDS_PER_LAYER + k] as number;
      const measured = (x: number): number | null => (Number.isFinite(x) ? x : null);
      const observedBatches = sampled > 0;
      for (const k of [0, 2, 3]) if (!Number.isFinite(v(k))) nonFinite = true;
      const stats: LayerEpochStats = { name: a.layer.name, weight_abs_mean: measured(v(3)) };
      // fields of what was not measured are left out (null would mean "non-finite")
      if (observedBatches) {
        stats.grad_abs_mean = measured(v(0));
        stats.grad_zero_frac = measured(v(1));
        stats.grad_abs_max = measured(v(2));
        if (a.biasAbsSum) stats.bias_grad_zero_frac = measured(v(5));
      }
      if (hadStart[i]) stats.update_ratio = measured(v(4));
      layers.push(stats);
    });
    return { layers, extra: Array.from(values.subarray(base + 1)), sampled, nonFinite };
  }

  private reset(): void {
    const tf = this.tf;
    this.sampled = 0;
    tf.tidy(() => {
      for (const a of this.acc) {
        a.absMeanSum.assign(tf.scalar(0));
        a.zeroFracSum.assign(tf.scalar(0));
        a.absMax.assign(tf.scalar(0));
        a.biasAbsSum?.assign(tf.zerosLike(a.biasAbsSum));
        a.start?.dispose();
        delete a.start;
      }
    });
  }

  dispose(): void {
    for (const a of this.acc) {
      a.absMeanSum.dispose();
      a.zeroFracSum.dispose();
      a.absMax.dispose();
      a.biasAbsSum?.dispose();
      a.start?.dispose();
    }
  }
}
