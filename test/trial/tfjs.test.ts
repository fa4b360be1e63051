/**
 * End to end: a real tfjs training loop, the tfjs reporter's onPayload wired to a trial on a real
 * `bttackler serve`, on the pure-JS cpu backend and on the native "tensorflow" backend of
 * @tensorflow/tfjs-node (`npm run setup:tfjs-node`; skipped outside CI when missing).
 */
import * as tf from "@tensorflow/tfjs";
import { describe, expect, it } from "vitest";
import { tfjsReporter } from "../../src/reporter/index.js";
import { trial } from "../../src/index.js";
import { RpcClient, servicePerFile } from "../service/harness.js";
import { loadNativeBackend, NATIVE_BACKEND } from "../tfjs-node.js";

const nativeMissing = await loadNativeBackend();
if (nativeMissing !== undefined) console.warn(`skipping the trial SDK test on the '${NATIVE_BACKEND}' backend: ${nativeMissing}`);
const BACKENDS = ["cpu", ...(nativeMissing === undefined ? [NATIVE_BACKEND] : [])];

const service = servicePerFile();

describe.each(BACKENDS)("trial SDK with the tfjs reporter on the %s backend", (backend) => {
  it("a diverging fit is stopped by the service's verdict through onPayload, and the trial ends pruned", async () => {
    expect(await tf.setBackend(backend)).toBe(true);
    const study = `tfjs-${backend}`;
    const t = await trial({ env: { BTTACKLER_URL: service().url, BTTACKLER_STUDY: study, BTTACKLER_TRIAL: "lr-50" }, signals: false });
    const xs = tf.randomNormal([256, 16], 0, 1, "float32", 1);
    const ys = tf.randomNormal([256, 4], 0, 1, "float32", 2);
    const model = tf.sequential({ layers: [tf.layers.dense({ inputShape: [16], units: 32, activation: "relu" }), tf.layers.dense({ units: 4 })] });
    model.compile({ optimizer: tf.train.sgd(50), loss: "meanSquaredError" });
    const reporter = tfjsReporter(tf, { sampleEvery: 1, onPayload: t.onPayload });
    const history = await model.fit(xs, ys, { epochs: 10, batchSize: 32, verbose: 0, callbacks: [reporter] });
    xs.dispose();
    ys.dispose();

    expect(t.shouldStop()).toBe(true);
    expect(t.stopReason).toMatch(/^(NF|EG|DIV) /);
    expect(history.epoch.length).toBeLessThan(10);
    expect(t.reports.length).toBe(history.epoch.length);
    await t.final(Number.NaN);

    const client = await RpcClient.connect(service().url);
    const { trials } = await client.call<{ trials: { trial: string; stopped_at?: number; ended?: string }[] }>("study.trials", { study });
    client.close();
    expect(trials).toEqual([expect.objectContaining({ trial: "lr-50", stopped_at: history.epoch.length - 1, ended: "pruned" })]);
  });
});
