/** No host: a script runs on its own; payload validation; the API's own rules; host detection. */
import { afterEach, describe, expect, it } from "vitest";
import { detectHost, trial, type Trial } from "../../src/index.js";
import { runTrain, warnings } from "./child.js";

const opened: Trial[] = [];
async function open(env: Record<string, string>, warn?: (m: string) => void): Promise<Trial> {
  const t = await trial({ env, signals: false, ...(warn ? { warn } : {}) });
  opened.push(t);
  return t;
}
afterEach(() => {
  for (const t of opened.splice(0)) t.close();
});

describe("trial SDK without a host", () => {
  it("detects its host from the environment, NNI first, then the relay, then the service", () => {
    const all = { NNI_TRIAL_COMMAND_CHANNEL: "http://x", BTTACKLER_RELAY_FD: "3", BTTACKLER_URL: "ws://x" };
    expect(detectHost(all)).toBe("nni");
    expect(detectHost({ ...all, NNI_TRIAL_COMMAND_CHANNEL: "" })).toBe("optuna");
    expect(detectHost({ BTTACKLER_URL: "ws://x", BTTACKLER_PARAMS: "{}" })).toBe("standalone");
    expect(detectHost({ BTTACKLER_PARAMS: "{}" })).toBe("local");
  });

  it("reads params from BTTACKLER_PARAMS, answers every report stop=false and keeps the validated payloads", async () => {
    const t = await open({ BTTACKLER_PARAMS: '{"lr": 0.01, "layers": [64, 32], "odd": NaN}', BTTACKLER_TRIAL: "mine" });
    expect(t.host).toBe("local");
    expect(t.id).toBe("mine");
    expect(t.params).toEqual({ lr: 0.01, layers: [64, 32], odd: null });
    expect(await t.report({ step: 0, metrics: { train_loss: 2.3 } })).toEqual({ stop: false });
    expect(await t.report({ step: 1, metrics: { train_loss: Number.NaN }, non_finite: true })).toEqual({ stop: false });
    expect(t.shouldStop()).toBe(false);
    expect(t.reports).toEqual([
      { step: 0, metrics: { train_loss: 2.3 } },
      { step: 1, metrics: { train_loss: null }, non_finite: true },
    ]);
    await t.final(0.91);
    expect(t.finalValue).toBe(0.91);
  });

  it("has {} as params and a generated id when nothing is set", async () => {
    const a = await open({});
    const b = await open({});
    expect(a.params).toEqual({});
    expect(a.id).toMatch(/^local-/);
    expect(a.id).not.toBe(b.id);
  });

  it("rejects a payload that is not payload v1 with a TypeError naming the field, and sends nothing", async () => {
    const t = await open({});
    const err = await t.report({ step: 1.5, layers: [{ grad_abs_mean: -1 }], extra: 1 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TypeError);
    expect((err as Error).message).toContain("payload.step: got 1.5, expected an integer");
    expect((err as Error).message).toContain("payload.layers[0].grad_abs_mean: got -1, expected a number >= 0");
    expect((err as Error).message).toContain("payload.extra");
    await expect(t.report("nope")).rejects.toThrow(TypeError);
    await expect(t.report({})).rejects.toThrow(/payload.step: got nothing/);
    expect(t.reports).toEqual([]);
  });

  it("refuses a malformed BTTACKLER_PARAMS, a bad final value, and reports after final", async () => {
    await expect(trial({ env: { BTTACKLER_PARAMS: "{lr: 1}" }, signals: false })).rejects.toThrow(/BTTACKLER_PARAMS is not JSON/);
    await expect(trial({ env: { BTTACKLER_PARAMS: "[1, 2]" }, signals: false })).rejects.toThrow(/must be a JSON object/);
    await expect(trial({ env: {}, signals: false, timeoutMs: 0 })).rejects.toThrow(/timeoutMs/);
    const t = await open({});
    await expect(t.final("high" as unknown as number)).rejects.toThrow(TypeError);
    await t.final({ default: 0.5, other: 1 });
    await expect(t.report({ step: 0 })).rejects.toThrow(/finished/);
    await expect(t.final(1)).rejects.toThrow(/finished/);
  });

  it("warns once that a legacy NNI (no HTTP channel) is not supported, and runs without a host", async () => {
    const seen: string[] = [];
    const t = await open({ NNI_PLATFORM: "local" }, (m) => seen.push(m));
    expect(t.host).toBe("local");
    expect(seen).toEqual([expect.stringMatching(/^bttackler: NNI_PLATFORM is set but NNI_TRIAL_COMMAND_CHANNEL is not/)]);
  });

  it("runs a user's script (import from \"bttackler\") to its end and exits by itself", async () => {
    const run = runTrain({ payloads: [{ step: 0 }, { step: 1, metrics: { train_loss: null } }], final: 0.5 }, { BTTACKLER_PARAMS: '{"lr":0.1}' });
    expect(await run.exited).toEqual({ code: 0, signal: null });
    expect(run.events.map((e) => e.event)).toEqual(["open", "verdict", "verdict", "final"]);
    expect(run.events[0]).toMatchObject({ host: "local", params: { lr: 0.1 } });
    expect(run.events[2]).toMatchObject({ verdict: { stop: false }, shouldStop: false });
    expect(warnings(run.stderr())).toEqual([]);
  });
});
