/** Idempotency, order tolerance and durability across a real kill -9 of the service process. */
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { DiagnosisEngine } from "../../src/diagnosis/engine.js";
import type { PayloadV1, Verdict } from "../../src/diagnosis/types.js";
import { resolveConfig } from "../../src/schema/validate.js";
import { RpcClient, expectRpcError, payload, serve, tempDb } from "./harness.js";

const CONFIG = { max_steps: 20 };

/** 30 trials of mixed quality; trial 7 explodes at step 12, trial 3 goes NaN at step 4. */
function trialPayload(trial: number, step: number): PayloadV1 {
  const p = payload(step, 0.3 + (trial % 10) / 8) as unknown as PayloadV1;
  if (trial === 7 && step >= 12) for (const l of p.layers ?? []) l.grad_abs_mean = 1e5;
  if (trial === 3 && step >= 4) p.metrics = { train_loss: null };
  return p;
}

type Answer = Verdict & { study: string; duplicate: boolean };
const strip = ({ study: _s, duplicate: _d, ...v }: Answer): Verdict => v;

// Each test starts, kills and restarts service processes: on a loaded 2-core machine that takes seconds.
describe("durability", { timeout: 60_000 }, () => {
  it("resumes after kill -9 with every acknowledged report, answering as a service that never stopped", async () => {
    const db = tempDb();
    const reference = new DiagnosisEngine(resolveConfig(CONFIG));
    let proc = await serve(["--db", db]);
    let client = await RpcClient.connect(proc.url);
    await client.call("study.open", { study: "s", config: CONFIG });
    const served: Verdict[] = [];
    const expected: Verdict[] = [];
    const runSteps = async (from: number, to: number): Promise<void> => {
      for (let step = from; step < to; step++) {
        for (let t = 0; t < 30; t++) {
          const p = trialPayload(t, step);
          served.push(strip(await client.call<Answer>("trial.reportAndAssess", { study: "s", trial: `t${t}`, payload: p })));
          expected.push(reference.report(`t${t}`, p));
        }
      }
    };
    await runSteps(0, 10);
    proc.child.kill("SIGKILL");
    expect(await proc.exited).toBeNull();

    proc = await serve(["--db", db]);
    client = await RpcClient.connect(proc.url);
    const restored = proc.logs.find((l) => l.includes("study restored"));
    expect(restored).toContain('"payloads":300');
    const history = await client.call<{ verdicts: Verdict[] }>("trial.history", { study: "s", trial: "t5" });
    expect(history.verdicts).toEqual(expected.filter((v) => v.trial === "t5"));
    await runSteps(10, 20);
    client.close();
    proc.child.kill("SIGTERM");
    expect(await proc.exited).toBe(0);

    expect(served).toEqual(expected);
    const stops = expected.filter((v) => v.stopped_at === v.step).map((v) => `${v.trial}@${v.step}`);
    expect(stops).toContain("t3@4");
    expect(stops).toContain("t7@12");
    expect(expected.some((v) => v.protected)).toBe(true);
  });

  it("loses no acknowledged report when killed with reports in flight", async () => {
    const db = tempDb();
    const proc = await serve(["--db", db]);
    const clients = await Promise.all(Array.from({ length: 8 }, () => RpcClient.connect(proc.url)));
    const acked: string[] = [];
    let killed = false;
    const work = clients.map(async (c, i) => {
      for (let step = 0; step < 200 && !killed; step++) {
        try {
          await c.call("trial.report", { study: "crash", trial: `w${i}`, payload: payload(step, 1, 3) });
          acked.push(`w${i}@${step}`);
        } catch {
          return;
        }
        if (acked.length >= 400 && !killed) {
          killed = true;
          proc.child.kill("SIGKILL");
        }
      }
    });
    await Promise.race([Promise.all(work), proc.exited]);
    await proc.exited;
    expect(acked.length).toBeGreaterThanOrEqual(400);
    const stored = new Database(db, { readonly: true })
      .prepare("SELECT trial, step FROM events WHERE kind = 'payload'")
      .all() as { trial: string; step: number }[];
    const have = new Set(stored.map((r) => `${r.trial}@${r.step}`));
    expect(acked.filter((a) => !have.has(a))).toEqual([]);
  });

  it("stores a re-delivered step once with the same verdict, refuses a late step, keeps a stopped trial stopped", async () => {
    const db = tempDb();
    const proc = await serve(["--db", db]);
    const client = await RpcClient.connect(proc.url);
    try {
      const first = await client.call<Answer>("trial.reportAndAssess", { study: "s", trial: "t", payload: payload(0) });
      const second = await client.call<Answer>("trial.reportAndAssess", { study: "s", trial: "t", payload: { ...payload(0), metrics: { train_loss: 99 } } });
      expect(second.duplicate).toBe(true);
      expect(strip(second)).toEqual(strip(first));
      await client.call("trial.report", { study: "s", trial: "t", payload: payload(2) });
      const late = await expectRpcError(client.call("trial.report", { study: "s", trial: "t", payload: payload(1) }));
      expect(late.code).toBe(-32003);
      expect(late.message).toContain("arrives after step 2");
      const nan = { ...payload(3), metrics: { train_loss: null } };
      expect(await client.call("trial.reportAndAssess", { study: "s", trial: "t", payload: nan })).toMatchObject({ stop: true, stopped_at: 3 });
      expect(await client.call("trial.reportAndAssess", { study: "s", trial: "t", payload: payload(4) })).toMatchObject({ stop: true, stopped_at: 3 });
      const history = await client.call<{ verdicts: Verdict[] }>("trial.history", { study: "s", trial: "t" });
      expect(history.verdicts.map((v) => v.step)).toEqual([0, 2, 3, 4]);
    } finally {
      client.close();
      proc.child.kill("SIGTERM");
      expect(await proc.exited).toBe(0);
    }
    const rows = new Database(db, { readonly: true }).prepare("SELECT step FROM events WHERE trial = 't' ORDER BY seq").all() as { step: number }[];
    expect(rows.map((r) => r.step)).toEqual([0, 2, 3, 4]);
  });
});
