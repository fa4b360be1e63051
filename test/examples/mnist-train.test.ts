/** docs/examples/mnist/train.js as a user runs it: a real child process against a real `bttackler serve`. */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { RpcClient, servicePerFile } from "../service/harness.js";
import { loadNativeBackend, NATIVE_BACKEND } from "../tfjs-node.js";

const nativeMissing = await loadNativeBackend();

const TRAIN = fileURLToPath(new URL("../../docs/examples/mnist/train.js", import.meta.url));

const service = servicePerFile();

function train(params: Record<string, unknown>, trialId: string): Promise<{ code: number | null; result: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [TRAIN], {
      env: { ...process.env, BTTACKLER_URL: service().url, BTTACKLER_STUDY: "example", BTTACKLER_TRIAL: trialId, BTTACKLER_PARAMS: JSON.stringify(params) },
    });
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => {
      const line = out.trim().split("\n").pop() ?? "";
      try {
        resolve({ code, result: JSON.parse(line) as Record<string, unknown> });
      } catch {
        reject(new Error(`train.js printed no result (exit ${String(code)}): ${out}\n${err}`));
      }
    });
  });
}

describe("docs/examples/mnist/train.js", () => {
  it("is stopped with its reason when the configuration diverges, and runs to the end when it is healthy", { timeout: 120_000 }, async () => {
    const [broken, healthy] = await Promise.all([
      train({ lr: 50, optimizer: "sgd", loss: "mse", epochs: 4, samples: 600 }, "broken"),
      train({ epochs: 3, samples: 600, backend: "wasm" }, "healthy"),
    ]);
    expect(broken.code).toBe(0);
    expect(broken.result.epochs).toBeLessThan(4);
    expect(String(broken.result.stopped)).toMatch(/^(NF|EG) /);
    expect(healthy.code).toBe(0);
    expect(healthy.result).toMatchObject({ epochs: 3, stopped: null });
    expect(healthy.result.test_acc).toBeGreaterThan(0.5);

    const client = await RpcClient.connect(service().url);
    const trials = await client.call<{ trials: { trial: string; stopped_at?: number; ended?: string }[] }>("study.trials", { study: "example" });
    client.close();
    const byId = Object.fromEntries(trials.trials.map((t) => [t.trial, t]));
    expect(byId.broken).toMatchObject({ ended: "pruned" });
    expect(byId.broken?.stopped_at).toBeTypeOf("number");
    expect(byId.healthy).toMatchObject({ ended: "complete" });
    expect(byId.healthy?.stopped_at).toBeUndefined();
  });

  it.skipIf(nativeMissing !== undefined)("runs on the native tensorflow backend (tfjs-node) when asked: a cnn trial to the end", { timeout: 120_000 }, async () => {
    const native = await train({ model: "cnn", epochs: 2, samples: 600, backend: NATIVE_BACKEND }, "native-cnn");
    expect(native.code).toBe(0);
    expect(native.result).toMatchObject({ epochs: 2, stopped: null });
    expect(native.result.test_acc).toBeGreaterThan(0.3);
  });
});
