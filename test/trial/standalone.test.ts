/** The standalone host against a real `bttackler serve` (a child process), and against services that are not there. */
import { createServer, type Server, type Socket } from "node:net";
import type { AddressInfo } from "node:net";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { trial, type Trial, type TrialOptions } from "../../src/index.js";
import { payload, RpcClient, serve, servicePerFile, tempDb } from "../service/harness.js";
import { runTrain, warnings } from "./child.js";

const service = servicePerFile();
let client: RpcClient;

beforeAll(async () => {
  client = await RpcClient.connect(service().url);
});

afterAll(() => {
  client.close();
});

const trials: Trial[] = [];
afterEach(() => {
  for (const t of trials.splice(0)) t.close();
});

async function open(env: Record<string, string>, options: Partial<TrialOptions> = {}): Promise<{ t: Trial; warned: string[] }> {
  const warned: string[] = [];
  const t = await trial({ env, signals: false, warn: (m) => warned.push(m), ...options });
  trials.push(t);
  return { t, warned };
}

interface TrialSummary {
  trial: string;
  last_step: number;
  stopped_at?: number;
  reason?: string;
  ended?: string;
}

async function summary(study: string, id: string): Promise<TrialSummary | undefined> {
  const { trials: all } = await client.call<{ trials: TrialSummary[] }>("study.trials", { study });
  return all.find((x) => x.trial === id);
}

/** A TCP server that accepts connections and never answers: the WebSocket handshake hangs. */
async function blackHole(): Promise<{ url: string; close: () => Promise<void> }> {
  const sockets: Socket[] = [];
  const server: Server = createServer((s) => sockets.push(s));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `ws://127.0.0.1:${port}`,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe("standalone: straight to bttackler serve", () => {
  it("a NaN train_loss is answered stop with NF; final ends the trial as pruned", async () => {
    const { t, warned } = await open({ BTTACKLER_URL: service().url, BTTACKLER_STUDY: "sdk", BTTACKLER_TRIAL: "nan-1", BTTACKLER_PARAMS: '{"lr": 3}' });
    expect(t.host).toBe("standalone");
    expect(t.id).toBe("nan-1");
    expect(t.params).toEqual({ lr: 3 });
    expect(await t.report(payload(0))).toEqual({ stop: false });
    const verdict = await t.report({ ...payload(1), metrics: { train_loss: Number.NaN } });
    expect(verdict.stop).toBe(true);
    expect(verdict.reason).toMatch(/^NF /);
    expect(verdict.reason).toContain("train_loss");
    expect(t.shouldStop()).toBe(true);
    expect(t.stopReason).toBe(verdict.reason);
    await t.final(0.1);
    expect(warned).toEqual([]);

    const history = await client.call<{ verdicts: { step: number; stop: boolean }[] }>("trial.history", { study: "sdk", trial: "nan-1" });
    expect(history.verdicts.map((v) => [v.step, v.stop])).toEqual([
      [0, false],
      [1, true],
    ]);
    expect(await summary("sdk", "nan-1")).toMatchObject({ last_step: 1, stopped_at: 1, ended: "pruned" });
  });

  it("a healthy trial ends complete; study defaults to \"standalone\" and the trial id is generated", async () => {
    const { t } = await open({ BTTACKLER_URL: service().url });
    expect(t.id).toMatch(/^[0-9a-f-]{36}$/);
    for (let step = 0; step < 3; step++) expect(await t.report(payload(step))).toEqual({ stop: false });
    await t.final(0.97);
    expect(await summary("standalone", t.id)).toMatchObject({ last_step: 2, ended: "complete" });
    expect((await summary("standalone", t.id))?.stopped_at).toBeUndefined();
  });

  it("a user's script in its own process reports, is stopped, ends the trial and exits by itself", async () => {
    const run = runTrain(
      { payloads: [payload(0), { step: 1, metrics: { train_loss: null }, non_finite: true }, payload(2)], final: 0.2 },
      { BTTACKLER_URL: service().url, BTTACKLER_STUDY: "sdk", BTTACKLER_TRIAL: "child-1" },
    );
    expect(await run.exited).toEqual({ code: 0, signal: null });
    expect(run.events.filter((e) => e.event === "verdict").map((e) => (e.verdict as { stop: boolean }).stop)).toEqual([false, true]);
    expect(await summary("sdk", "child-1")).toMatchObject({ stopped_at: 1, ended: "pruned" });
    expect(warnings(run.stderr())).toEqual([]);
  });

  it("a script that exits without final leaves no open connection keeping it alive", async () => {
    const run = runTrain({ payloads: [payload(0), payload(1)] }, { BTTACKLER_URL: service().url, BTTACKLER_STUDY: "sdk", BTTACKLER_TRIAL: "child-2" });
    expect(await run.exited).toEqual({ code: 0, signal: null });
    expect(await summary("sdk", "child-2")).toMatchObject({ last_step: 1 });
  });

  it("an unreachable URL fails open at once, warns once, and backs off", async () => {
    const { t, warned } = await open({ BTTACKLER_URL: "ws://127.0.0.1:1" });
    const started = Date.now();
    expect(await t.report(payload(0))).toEqual({ stop: false });
    expect(await t.report(payload(1))).toEqual({ stop: false });
    await t.final(1);
    expect(Date.now() - started).toBeLessThan(1000);
    expect(warned).toEqual([expect.stringMatching(/^bttackler: the bttackler service at ws:\/\/127.0.0.1:1 is unavailable \(cannot connect .*ECONNREFUSED/)]);
  });

  it("a service that never answers fails open within the per-call timeout", async () => {
    const hole = await blackHole();
    try {
      const { t, warned } = await open({ BTTACKLER_URL: hole.url }, { timeoutMs: 300 });
      const started = Date.now();
      expect(await t.report(payload(0))).toEqual({ stop: false });
      const first = Date.now() - started;
      expect(first).toBeGreaterThanOrEqual(250);
      expect(first).toBeLessThan(1000);
      expect(await t.report(payload(1))).toEqual({ stop: false }); // backing off: answered at once
      expect(Date.now() - started - first).toBeLessThan(100);
      expect(warned).toEqual([expect.stringMatching(/unavailable \((no answer to trial.reportAndAssess within 300 ms|cannot connect)/)]);
    } finally {
      await hole.close();
    }
  });

  it("an error reply fails open: a report after the trial ended", async () => {
    const { t: first } = await open({ BTTACKLER_URL: service().url, BTTACKLER_STUDY: "sdk", BTTACKLER_TRIAL: "ended-1" });
    await first.report(payload(0));
    await first.final(0.5);
    const { t: again, warned } = await open({ BTTACKLER_URL: service().url, BTTACKLER_STUDY: "sdk", BTTACKLER_TRIAL: "ended-1" });
    expect(await again.report(payload(1))).toEqual({ stop: false });
    expect(warned).toEqual([expect.stringMatching(/answered error -32003/)]);
  });

  it("sends BTTACKLER_TOKEN as a bearer token; a wrong token fails open", async () => {
    const secured = await serve(["--db", tempDb(), "--token", "s3cret"]);
    try {
      const { t, warned } = await open({ BTTACKLER_URL: secured.url, BTTACKLER_TOKEN: "s3cret", BTTACKLER_TRIAL: "tok" });
      expect(await t.report({ ...payload(0), metrics: { train_loss: null } })).toMatchObject({ stop: true });
      expect(warned).toEqual([]);
      const { t: wrong, warned: warnedWrong } = await open({ BTTACKLER_URL: secured.url, BTTACKLER_TOKEN: "nope", BTTACKLER_TRIAL: "tok2" });
      expect(await wrong.report(payload(0))).toEqual({ stop: false });
      expect(warnedWrong).toEqual([expect.stringMatching(/unauthorized/)]);
    } finally {
      secured.child.kill("SIGTERM");
      await secured.exited;
    }
  });

  it("refuses a URL that is not ws:// and a study name longer than the service accepts", async () => {
    await expect(trial({ env: { BTTACKLER_URL: "http://127.0.0.1:8765" }, signals: false })).rejects.toThrow(/BTTACKLER_URL must be a ws:\/\/ or wss:\/\/ URL/);
    await expect(trial({ env: { BTTACKLER_URL: "ws://x", BTTACKLER_STUDY: "s".repeat(257) }, signals: false })).rejects.toThrow(/BTTACKLER_STUDY must be at most 256/);
  });
});
