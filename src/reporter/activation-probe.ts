/**
 * The activation probe of the TensorFlow.js reporter (tfjs-reporter.ts, option `probe`): a fixed
 * batch run through the model once per epoch, measuring on the device the share of dead units of
 * each ReLU-like layer (act_zero_frac) and of saturated units of each sigmoid or tanh layer
 * (act_saturated_frac), docs/payload.md.
 */
import type * as tfjs from "@tensorflow/tfjs";

type TF = typeof tfjs;

const RELU_LIKE = new Set(["relu", "relu6", "elu", "selu"]);
/** |x| >= 5 read off the output: sigmoid(x) <= sigmoid(-5) or >= sigmoid(5); |tanh(x)| >= tanh(5). */
const SATURATION: Record<string, number> = { sigmoid: 1 / (1 + Math.exp(5)), tanh: 1 - Math.tanh(5), hard_sigmoid: 0 };

/** Runs the probe batch through the model and computes, on the device, one scalar per measured layer. */
export class ActivationProbe {
  private readonly measured: { index: number; kind: "zero" | "saturated"; activation: string }[] = [];
  private readonly probeModel: tfjs.LayersModel | undefined;

  constructor(
    private readonly tf: TF,
    model: tfjs.LayersModel,
    layerNames: string[],
    private readonly input: tfjs.Tensor,
  ) {
    const outputs: tfjs.SymbolicTensor[] = [];
    layerNames.forEach((name, index) => {
      const layer = model.getLayer(name);
      const activation = String((layer.getConfig() as { activation?: unknown }).activation ?? "");
      const kind = RELU_LIKE.has(activation) ? "zero" : activation in SATURATION ? "saturated" : undefined;
      const output = layer.output;
      if (kind === undefined || Array.isArray(output)) return;
      this.measured.push({ index, kind, activation });
      outputs.push(output);
    });
    this.probeModel = outputs.length > 0 ? tf.model({ inputs: model.inputs, outputs }) : undefined;
  }

  /** One scalar per measured layer, still on the device (the caller reads them with everything else). */
  run(): { index: number; field: "act_zero_frac" | "act_saturated_frac"; value: tfjs.Tensor }[] {
    const tf = this.tf;
    if (this.probeModel === undefined) return [];
    const probeModel = this.probeModel;
    return tf.tidy(() => {
      const raw = probeModel.predict(this.input);
      const outs = Array.isArray(raw) ? raw : [raw];
      return this.measured.map((m, i) => {
        const out = outs[i] as tfjs.Tensor;
        const units = out.shape[out.shape.length - 1] as number;
        const flat = tf.reshape(out, [-1, units]);
        if (m.kind === "zero") {
          const dead = tf.lessEqual(tf.max(flat, 0), 0);
          return { index: m.index, field: "act_zero_frac" as const, value: tf.keep(tf.mean(tf.cast(dead, "float32"))) };
        }
        const edge = SATURATION[m.activation] as number;
        const saturated =
          m.activation === "tanh" ? tf.greaterEqual(tf.abs(flat), 1 - edge) : tf.logicalOr(tf.lessEqual(flat, edge), tf.greaterEqual(flat, 1 - edge));
        return { index: m.index, field: "act_saturated_frac" as const, value: tf.keep(tf.mean(tf.cast(saturated, "float32"))) };
      });
    });
  }
}
