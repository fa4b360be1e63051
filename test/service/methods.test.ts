/** Every method of the service through a real WebSocket client. */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { silentLog } from "../../src/protocol/log.js";
import { startWsService, type RunningService } from "../../src/service/service.js";
import { RpcClient, expectRpcError, payload, tempDb } from "./harness.js";

let service: RunningService;
let client: RpcClient;

beforeEach(async () => {
  service = await startWsService({ db: tempDb(), version: "test", log: silentLog, port: 0 });
  client = await RpcClient.connect(service.url);
});

afterEach(async () => {
  client.close();
  await service.close();
});

describe("service methods", () => {
  it("service.health reports status, version and db", async () => {
    const health = await client.call("service.health");
    expect(health).toMatchObject({ status: "ok", version: "test", studies: 0 });
    expect(typeof health.uptime_s).toBe("number");
    expect(health.recent_frames).toMatchObject({ frames: 0 });
    expect(health.runtime).toMatchObject({ event_loop_delay_ms: { p99: expect.any(Number), max: expect.any(Number) }, rss_mb: expect.any(Number) });
  });

  it("service.health calls in one batch share one set of runtime figures and latency summary", async () => {
    const batch = Array.from({ length: 5 }, (_, i) => ({ jsonrpc: "2.0", id: `h${i}`, method: "service.health" }));
    const replies = (await client.exchange(JSON.stringify(batch))) as { result: { runtime: unknown; recent_frames: unknown } }[];
    expect(replies).toHaveLength(5);
    const figures = replies.map((r) => JSON.stringify([r.result.runtime, r.result.recent_frames]));
    expect(new Set(figures).size).toBe(1);
  });

  it("service.health counts the service's garbage-collection pauses since the previous call", async () => {
    await client.call("service.health");
    // ~20 MB of parsing and diagnosis in the service: more than its young generation holds
    for (let step = 0; step < 2000; step++) await client.call("trial.report", { study: "gc", trial: `t${step % 50}`, payload: payload(Math.floor(step / 50)) });
    const { runtime } = await client.call<{ runtime: { gc_pauses: Record<"young" | "other", { count: number; total_ms: number; max_ms: number }> } }>("service.health");
    const { young, other } = runtime.gc_pauses;
    expect(young.count).toBeGreaterThan(0);
    expect(young.max_ms).toBeGreaterThan(0);
    expect(young.total_ms).toBeGreaterThanOrEqual(young.max_ms);
    expect(other).toMatchObject({ count: expect.any(Number), total_ms: expect.any(Number), max_ms: expect.any(Number) });
  });

  it("study.open creates a study with a validated, completed config and reopens it", async () => {
    const opened = await client.call<{ created: boolean; config: { max_steps: number; rules: { EG: { grad_median_max: number; ratio_median_max: number } } } }>(
      "study.open",
      { study: "s1", config: { max_steps: 20, rules: { EG: { grad_median_max: 100 } } } },
    );
    expect(opened.created).toBe(true);
    expect(opened.config.max_steps).toBe(20);
    expect(opened.config.rules.EG).toMatchObject({ grad_median_max: 100, ratio_median_max: 1000 });
    const again = await client.call("study.open", { study: "s1" });
    expect(again).toMatchObject({ created: false, config: { max_steps: 20 } });
  });

  it("study.open refuses a different config once the study has events, and names a bad config field", async () => {
    await client.call("study.open", { study: "s1", config: { max_steps: 20 } });
    await client.call("trial.report", { study: "s1", trial: "t", payload: payload(0) });
    const conflict = await expectRpcError(client.call("study.open", { study: "s1", config: { max_steps: 30 } }));
    expect(conflict.code).toBe(-32004);
    const bad = await expectRpcError(client.call("study.open", { study: "s2", config: { rules: { VG: { persistance: 2 } } } }));
    expect(bad.code).toBe(-32602);
    expect(bad.message).toContain("params.config.rules.VG.persistance");
  });

  it("trial.report stores, trial.assess answers the stored verdict, latest or at a step", async () => {
    await client.call("study.open", { study: "s", config: { max_steps: 20 } });
    const r0 = await client.call("trial.report", { study: "s", trial: "t1", payload: payload(0) });
    expect(r0).toEqual({ study: "s", trial: "t1", step: 0, duplicate: false });
    await client.call("trial.report", { study: "s", trial: "t1", payload: payload(1) });
    const latest = await client.call("trial.assess", { study: "s", trial: "t1" });
    expect(latest).toMatchObject({ study: "s", trial: "t1", step: 1, stop: false });
    const first = await client.call("trial.assess", { study: "s", trial: "t1", step: 0 });
    expect(first).toMatchObject({ step: 0, stop: false });
    const none = await expectRpcError(client.call("trial.assess", { study: "s", trial: "t1", step: 5 }));
    expect(none.code).toBe(-32002);
    const unknownStudy = await expectRpcError(client.call("trial.assess", { study: "nope", trial: "t1" }));
    expect(unknownStudy.code).toBe(-32001);
  });

  it("trial.reportAndAssess stops an exploding trial with its reason, and a report to an unopened study creates it", async () => {
    const sick = payload(0);
    (sick.layers as Record<string, unknown>[]).forEach((l) => (l.grad_abs_mean = 1e6));
    const verdict = await client.call<{ stop: boolean; reason: string; symptoms: { code: string }[]; duplicate: boolean }>(
      "trial.reportAndAssess",
      { study: "fresh", trial: "bad", payload: sick },
    );
    expect(verdict.stop).toBe(true);
    expect(verdict.duplicate).toBe(false);
    expect(verdict.symptoms.map((s) => s.code)).toEqual(["EG"]);
    expect(verdict.reason).toContain("grad_median_high");
    const list = await client.call<{ studies: { study: string; trials: number; stopped: number }[] }>("study.list");
    expect(list.studies).toEqual([expect.objectContaining({ study: "fresh", trials: 1, stopped: 1 })]);
  });

  it("trial.end, trial.history and study.trials describe what happened", async () => {
    for (let s = 0; s < 3; s++) await client.call("trial.reportAndAssess", { study: "s", trial: "t", payload: payload(s) });
    const ended = await client.call("trial.end", { study: "s", trial: "t", state: "complete" });
    expect(ended).toEqual({ study: "s", trial: "t", state: "complete" });
    const history = await client.call<{ verdicts: { step: number; stop: boolean }[] }>("trial.history", { study: "s", trial: "t" });
    expect(history.verdicts.map((v) => [v.step, v.stop])).toEqual([
      [0, false],
      [1, false],
      [2, false],
    ]);
    const trials = await client.call<{ trials: unknown[] }>("study.trials", { study: "s" });
    expect(trials.trials).toEqual([{ trial: "t", last_step: 2, protected: false, ended: "complete" }]);
    const late = await expectRpcError(client.call("trial.report", { study: "s", trial: "t", payload: payload(3) }));
    expect(late.code).toBe(-32003);
    expect(late.message).toContain("already ended");
  });

  it("trial.end of a study or trial that never reported is refused as unknown, and no phantom study or trial appears", async () => {
    const refused = async (params: Record<string, unknown>): Promise<number> => (await expectRpcError(client.call("trial.end", params))).code;
    expect(await refused({ study: "never", trial: "t", state: "complete" })).toBe(-32001);
    await client.call("trial.report", { study: "s", trial: "t", payload: payload(0) });
    expect(await refused({ study: "s", trial: "ghost", state: "complete" })).toBe(-32002);
    const list = await client.call<{ studies: { study: string; trials: number }[] }>("study.list");
    expect(list.studies.map((x) => [x.study, x.trials])).toEqual([["s", 1]]);
  });

  it("serves many clients at once, each on its own connection", async () => {
    const clients = await Promise.all(Array.from({ length: 20 }, () => RpcClient.connect(service.url)));
    const verdicts = await Promise.all(
      clients.map((c, i) => c.call<{ trial: string; stop: boolean }>("trial.reportAndAssess", { study: "many", trial: `t${i}`, payload: payload(0) })),
    );
    expect(verdicts.map((v) => v.trial)).toEqual(clients.map((_, i) => `t${i}`));
    for (const c of clients) c.close();
    const list = await client.call<{ studies: { trials: number }[] }>("study.list");
    expect(list.studies[0]?.trials).toBe(20);
  });

  it("works on an in-memory database (--db :memory:)", async () => {
    const memory = await startWsService({ db: ":memory:", version: "test", log: silentLog, port: 0 });
    const c = await RpcClient.connect(memory.url);
    try {
      await c.call("study.open", { study: "m", config: { max_steps: 20 } });
      const v = await c.call("trial.reportAndAssess", { study: "m", trial: "t", payload: { step: 0, metrics: { train_loss: null } } });
      expect(v).toMatchObject({ stop: true, duplicate: false });
      const again = await c.call("trial.reportAndAssess", { study: "m", trial: "t", payload: { step: 0, metrics: { train_loss: null } } });
      expect(again).toMatchObject({ stop: true, duplicate: true });
    } finally {
      c.close();
      await memory.close();
    }
  });
});
