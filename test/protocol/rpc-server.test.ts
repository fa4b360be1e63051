/** RpcHandler.handleText in-process, over a real StudyRegistry and SqliteStore: notifications, batch limits, internal errors, health latency. */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { silentLog, type Log, type LogFields } from "../../src/protocol/log.js";
import { RpcHandler, type RpcHandlerOptions } from "../../src/protocol/rpc-server.js";
import { StudyRegistry } from "../../src/protocol/study-registry.js";
import { SqliteStore } from "../../src/store/sqlite-store.js";

const dirs: string[] = [];
const stores: SqliteStore[] = [];

afterEach(async () => {
  await Promise.all(stores.splice(0).map((s) => s.close()));
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

interface Setup {
  handler: RpcHandler;
  registry: StudyRegistry;
  store: SqliteStore;
  /** The handler's millisecond clock: tests move it by hand. */
  clock: { now: number };
}

function setup(options: RpcHandlerOptions = {}, log: Log = silentLog): Setup {
  const dir = mkdtempSync(join(tmpdir(), "bttackler-rpc-"));
  dirs.push(dir);
  const path = join(dir, "rpc.db");
  const store = new SqliteStore(path);
  stores.push(store);
  const registry = new StudyRegistry(store, log);
  const clock = { now: 0 };
  const handler = new RpcHandler(registry, { version: "test", db: path, startedAt: 0, now: () => clock.now }, log, options);
  return { handler, registry, store, clock };
}

function capturingLog(): Log & { entries: { level: string; msg: string; fields: LogFields | undefined }[] } {
  const entries: { level: string; msg: string; fields: LogFields | undefined }[] = [];
  const at = (level: string) => (msg: string, fields?: LogFields) => void entries.push({ level, msg, fields });
  return { entries, debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") };
}

/**
 * A handler over a registry whose list() throws `message`: no input reaches an unexpected
 * exception any more, so this stands in for a bug.
 */
function brokenHandler(message: string, log: Log): RpcHandler {
  class BrokenRegistry extends StudyRegistry {
    override list(): never {
      throw new Error(message);
    }
  }
  const dir = mkdtempSync(join(tmpdir(), "bttackler-rpc-"));
  dirs.push(dir);
  const store = new SqliteStore(join(dir, "rpc.db"));
  stores.push(store);
  return new RpcHandler(new BrokenRegistry(store, log), { version: "test", db: "x", startedAt: 0, now: () => 0 }, log);
}

type Reply = { jsonrpc: "2.0"; id: string | number | null; result?: Record<string, unknown>; error?: { code: number; message: string; data?: unknown } };

function report(trial: string, step: number, id?: number): Record<string, unknown> {
  return { jsonrpc: "2.0", ...(id === undefined ? {} : { id }), method: "trial.report", params: { study: "s", trial, payload: { step, metrics: { train_loss: 1 } } } };
}

async function call(handler: RpcHandler, frame: unknown): Promise<Reply> {
  const text = await handler.handleText(typeof frame === "string" ? frame : JSON.stringify(frame));
  if (text === null) throw new Error("expected a reply");
  return JSON.parse(text) as Reply;
}

describe("RpcHandler", () => {
  it("answers a notification with nothing, after its report is stored as the request text", async () => {
    const { handler, store } = setup();
    const text = JSON.stringify(report("t", 0)).replace('"train_loss":1', '"train_loss":NaN');
    expect(await handler.handleText(text)).toBeNull();
    expect([...store.events("s")]).toEqual([{ study: "s", trial: "t", kind: "payload", step: 0, body: text, format: "request", verdict: expect.stringContaining('"stop":true') }]);
    // a notification that fails is not answered either, and stores nothing
    expect(await handler.handleText(JSON.stringify(report("t", 0, undefined)).replace('"step":0', '"step":-1'))).toBeNull();
    expect(await handler.handleText('{"jsonrpc":"2.0","method":"trial.explode"}')).toBeNull();
    expect([...store.events("s")]).toHaveLength(1);
  });

  it("answers a batch of notifications only with nothing, and stores each report with its payload as body", async () => {
    const { handler, store } = setup();
    expect(await handler.handleText(JSON.stringify([report("a", 0), report("b", 0), { jsonrpc: "2.0", method: "service.health" }]))).toBeNull();
    // (in the order the engine took them: the first report waits for the new study's row, the second does not)
    const rows = [...store.events("s")].sort((x, y) => x.trial.localeCompare(y.trial));
    expect(rows.map((e) => (e.kind === "payload" ? [e.trial, e.format, e.body] : e.kind))).toEqual([
      ["a", "payload", '{"step":0,"metrics":{"train_loss":1}}'],
      ["b", "payload", '{"step":0,"metrics":{"train_loss":1}}'],
    ]);
  });

  it("refuses a batch larger than maxBatch with one -32600 naming the limit, running none of it", async () => {
    const { handler, registry, store } = setup({ maxBatch: 3 });
    const reply = await call(handler, [report("a", 0, 1), report("b", 0, 2), report("c", 0, 3), report("d", 0, 4)]);
    expect(reply).toEqual({ jsonrpc: "2.0", id: null, error: { code: -32600, message: "invalid request: a batch holds at most 3 requests, got 4" } });
    expect(registry.size).toBe(0);
    await store.whenCommitted();
    expect(store.studies()).toEqual([]);

    const full = JSON.parse((await handler.handleText(JSON.stringify([report("a", 0, 1), report("b", 0, 2), report("c", 0, 3)]))) as string) as Reply[];
    expect(full.map((r) => [r.id, r.result?.duplicate])).toEqual([
      [1, false],
      [2, false],
      [3, false],
    ]);
  });

  it("refuses params nested deeper than 64 levels with -32602 instead of exhausting the stack", async () => {
    const { handler } = setup();
    const deep = `{"jsonrpc":"2.0","id":"deep","method":"study.open","params":{"study":"s","x":${"[".repeat(100_000)}${"]".repeat(100_000)}}}`;
    const reply = await call(handler, deep);
    expect(reply.error?.code).toBe(-32602);
    expect(reply.error?.message).toBe('params: got "(too deep to show)", expected at most 64 levels of nested arrays and objects');
    expect((await call(handler, { jsonrpc: "2.0", id: 2, method: "service.health" })).result).toMatchObject({ status: "ok" });
  });

  it("answers an unexpected error with -32603 'internal error', logging the cause but not sending it", async () => {
    const log = capturingLog();
    const handler = brokenHandler("secret detail of a bug", log);
    const reply = await call(handler, { jsonrpc: "2.0", id: "b", method: "study.list" });
    expect(reply).toEqual({ jsonrpc: "2.0", id: "b", error: { code: -32603, message: "internal error" } });
    expect(JSON.stringify(reply)).not.toContain("secret");
    const logged = log.entries.filter((e) => e.level === "error");
    expect(logged).toHaveLength(1);
    expect(logged[0]?.msg).toBe("internal error");
    expect(String(logged[0]?.fields?.error)).toContain("secret detail of a bug");
    expect((await call(handler, { jsonrpc: "2.0", id: 2, method: "service.health" })).result).toMatchObject({ status: "ok" });
  });

  it("logs an unexpected error inside a notification, alone or in a batch, once each, and answers nothing", async () => {
    const log = capturingLog();
    const handler = brokenHandler("bug in a notification", log);
    expect(await handler.handleText(JSON.stringify({ jsonrpc: "2.0", method: "study.list" }))).toBeNull();
    expect(await handler.handleText(JSON.stringify([{ jsonrpc: "2.0", method: "study.list" }]))).toBeNull();
    // an expected refusal in a notification (an unknown study) is no internal error
    expect(await handler.handleText(JSON.stringify({ jsonrpc: "2.0", method: "study.trials", params: { study: "none" } }))).toBeNull();
    const logged = log.entries.filter((e) => e.level === "error");
    expect(logged.map((e) => e.msg)).toEqual(["internal error", "internal error"]);
    expect(logged.every((e) => String(e.fields?.error).includes("bug in a notification"))).toBe(true);
  });

  it("service.health counts the frames handled before it and summarises their handling times", async () => {
    const { handler, clock } = setup();
    const timed = async (frame: string, ms: number): Promise<string | null> => {
      const start = clock.now;
      const reply = handler.handleText(frame);
      clock.now = start + ms;
      return reply;
    };
    await timed("{oops", 1);
    await timed(JSON.stringify(report("t", 0, 1)), 2);
    await timed(JSON.stringify(report("t", 1)), 3);
    await timed(JSON.stringify([{ jsonrpc: "2.0", id: 9, method: "study.list" }]), 10);
    clock.now = 12_400;
    const health = (await call(handler, { jsonrpc: "2.0", id: "h", method: "service.health" })).result;
    expect(health).toEqual({
      status: "ok",
      version: "test",
      db: expect.stringContaining("rpc.db"),
      studies: 1,
      uptime_s: 12,
      recent_frames: { frames: 4, p50_ms: 3, p99_ms: 10, max_ms: 10 },
    });
    const next = (await call(handler, { jsonrpc: "2.0", id: "h2", method: "service.health" })).result;
    expect(next?.recent_frames).toEqual({ frames: 5, p50_ms: 2, p99_ms: 10, max_ms: 10 }); // the first health frame took 0 ms
  });

  it("keeps the handling times of the last 1024 frames only", async () => {
    const { handler, clock } = setup();
    for (let i = 0; i < 1030; i++) {
      const reply = handler.handleText("{oops");
      clock.now += i < 6 ? 100 : 1;
      await reply;
    }
    const health = (await call(handler, { jsonrpc: "2.0", id: 1, method: "service.health" })).result;
    expect(health?.recent_frames).toEqual({ frames: 1024, p50_ms: 1, p99_ms: 1, max_ms: 1 });
  });
});
