/** The stdio transport, the start-up and stop log lines, and graceful shutdown on SIGINT/SIGTERM. */
import { spawn } from "node:child_process";
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { CLI, RpcClient, payload, serve, tempDb } from "./harness.js";

describe("operability", () => {
  it("speaks the same JSON-RPC over --stdio, one reply line per request line", async () => {
    const db = tempDb();
    const child = spawn(process.execPath, [CLI, "serve", "--stdio", "--db", db]);
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    const sick = { ...payload(0), metrics: { train_loss: 1 } };
    const frames = [
      { jsonrpc: "2.0", id: 1, method: "study.open", params: { study: "s", config: { max_steps: 20 } } },
      { jsonrpc: "2.0", id: 2, method: "trial.reportAndAssess", params: { study: "s", trial: "t", payload: sick } },
      { jsonrpc: "2.0", id: 3, method: "nope" },
    ].map((f) => JSON.stringify(f));
    frames.push('{"jsonrpc":"2.0","id":4,"method":"trial.reportAndAssess","params":{"study":"s","trial":"u","payload":{"step":0,"metrics":{"train_loss":NaN}}}}');
    frames.push("{oops");
    child.stdin.end(`${frames.join("\n")}\n`);
    const code = await new Promise((resolve) => child.on("exit", resolve));
    expect(code).toBe(0);
    const replies = out
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { id: number | null; result?: { stop?: boolean }; error?: { code: number } });
    const byId = new Map(replies.map((r) => [r.id, r]));
    expect(byId.get(1)?.result).toMatchObject({ created: true });
    expect(byId.get(2)?.result).toMatchObject({ stop: false });
    expect(byId.get(3)?.error?.code).toBe(-32601);
    expect(byId.get(4)?.result).toMatchObject({ stop: true });
    expect(byId.get(null)?.error?.code).toBe(-32700);
    expect(err).toContain('"transport":"stdio"');
    const rows = new Database(db, { readonly: true }).prepare("SELECT count(*) AS n FROM events").get() as { n: number };
    expect(rows.n).toBe(2);
  });

  it("counts --stdio's --max-payload in bytes: a line of few characters but many UTF-8 bytes is refused", async () => {
    const frame = JSON.stringify({ jsonrpc: "2.0", id: 1, method: "study.open", params: { study: "é".repeat(300) } });
    expect(frame.length).toBeLessThan(500);
    expect(Buffer.byteLength(frame)).toBeGreaterThan(500);
    const child = spawn(process.execPath, [CLI, "serve", "--stdio", "--db", ":memory:", "--max-payload", "500"]);
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stdin.end(`${frame}\n{"jsonrpc":"2.0","id":2,"method":"service.health"}\n`);
    expect(await new Promise((resolve) => child.on("exit", resolve))).toBe(0);
    const replies = out.trim().split("\n").map((l) => JSON.parse(l) as { id: number | null; error?: { code: number; message: string } });
    expect(replies.map((r) => [r.id, r.error?.code ?? "ok"])).toEqual([[null, -32600], [2, "ok"]]);
    expect(replies[0]?.error?.message).toBe(`invalid request: a frame of ${Buffer.byteLength(frame)} bytes exceeds the limit of 500 bytes`);
  });

  it.each(["SIGINT", "SIGTERM"] as const)("logs start-up and stops, and on %s commits everything and exits 0", async (signal) => {
    const db = tempDb();
    const proc = await serve(["--db", db]);
    const start = JSON.parse(proc.logs[0] as string) as Record<string, unknown>;
    expect(start).toMatchObject({ level: "info", msg: "bttackler serve listening", db, version: expect.any(String) });
    expect(start.address).toMatch(/^ws:\/\/127\.0\.0\.1:\d+$/);
    const client = await RpcClient.connect(proc.url);
    const sick = payload(0);
    (sick.layers as Record<string, unknown>[]).forEach((l) => (l.grad_abs_mean = 1e6));
    await client.call("trial.reportAndAssess", { study: "s", trial: "bad", payload: sick });
    const inFlight = Array.from({ length: 50 }, (_, i) => client.call("trial.report", { study: "s", trial: `t${i}`, payload: payload(0) }).catch(() => null));
    proc.child.kill(signal);
    const acked = (await Promise.all(inFlight)).filter((r) => r !== null).length;
    expect(await proc.exited).toBe(0);
    const stopLine = proc.logs.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === "trial stopped");
    expect(stopLine).toMatchObject({ study: "s", trial: "bad", step: 0, symptoms: ["EG"], reason: expect.stringContaining("EG grad_median_high") });
    expect(proc.logs.some((l) => l.includes('"msg":"bttackler serve stopped"'))).toBe(true);
    const n = (new Database(db, { readonly: true }).prepare("SELECT count(*) AS n FROM events").get() as { n: number }).n;
    expect(n).toBeGreaterThanOrEqual(1 + acked);
  });
});
