/** The SQLite event log on real temp files: group commit, commit barriers, close, idempotent rows, read-back, writer failures. */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { StudyConfig } from "../../src/diagnosis/types.js";
import { resolveConfig } from "../../src/schema/validate.js";
import { SqliteStore, type SqliteStoreOptions } from "../../src/store/sqlite-store.js";
import type { StoredEvent } from "../../src/store/stored-types.js";
import { countRows, exec, seqOf } from "./db-helpers.js";

const dirs: string[] = [];
const stores: SqliteStore[] = [];

function tempPath(): string {
  const dir = mkdtempSync(join(tmpdir(), "bttackler-store-"));
  dirs.push(dir);
  return join(dir, "store.db");
}

function openStore(path = tempPath(), options: SqliteStoreOptions = {}): SqliteStore {
  const store = new SqliteStore(path, options);
  stores.push(store);
  return store;
}

afterEach(async () => {
  await Promise.all(stores.splice(0).map((s) => s.close()));
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const CONFIG: StudyConfig = resolveConfig({ max_steps: 20 });

function payloadEvent(trial: string, step: number, body = `{"step":${step}}`, study = "s"): StoredEvent {
  return { study, trial, kind: "payload", step, body, format: "payload", verdict: `{"step":${step}}` };
}



const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe("SqliteStore", () => {
  it("commits the rows appended in one event-loop turn and resolves every promise, in arrival order", async () => {
    const path = tempPath();
    const store = openStore(path);
    await store.saveStudy("s", CONFIG, "2026-01-01T00:00:00.000Z");
    const appends = Array.from({ length: 100 }, (_, i) => store.append(payloadEvent(`t${i % 7}`, Math.floor(i / 7))));
    const settled = await Promise.allSettled(appends);
    expect(settled.filter((r) => r.status === "fulfilled")).toHaveLength(100);
    expect(countRows(path)).toBe(100);
    const order = [...store.events("s")].map((e) => (e.kind === "payload" ? `${e.trial}@${e.step}` : "end"));
    expect(order).toEqual(Array.from({ length: 100 }, (_, i) => `t${i % 7}@${Math.floor(i / 7)}`));
  });

  it("commits one turn's rows as one transaction: a row the database refuses fails all of them, the next turn commits", async () => {
    const path = tempPath();
    const store = openStore(path);
    await store.saveStudy("s", CONFIG, "2026-01-01T00:00:00.000Z");
    exec(path, "CREATE TRIGGER poison BEFORE INSERT ON events WHEN NEW.trial = 'poison' BEGIN SELECT RAISE(ABORT, 'poisoned row'); END");
    const sameTurn = await Promise.allSettled([store.append(payloadEvent("a", 0)), store.append(payloadEvent("poison", 0)), store.append(payloadEvent("b", 0))]);
    expect(sameTurn.map((r) => (r.status === "rejected" ? (r.reason as Error).message : "ok"))).toEqual(["poisoned row", "poisoned row", "poisoned row"]);
    expect(countRows(path)).toBe(0);
    await expect(store.append(payloadEvent("a", 0))).resolves.toBeUndefined();
    expect(countRows(path)).toBe(1);
  });

  it("whenCommitted resolves at once when nothing is queued, and only after the batches in flight otherwise", async () => {
    const path = tempPath();
    const store = openStore(path, { inlineCommitMaxRows: 0 }); // every batch on the writer thread
    await store.saveStudy("s", CONFIG, "2026-01-01T00:00:00.000Z");

    const idle = await Promise.race([store.whenCommitted().then(() => "committed"), nextTurn().then(() => "next turn")]);
    expect(idle).toBe("committed");

    const order: string[] = [];
    const append = store.append(payloadEvent("t", 0)).then(() => order.push("append"));
    await nextTurn(); // the store's flush ran first: the row is now in flight, not queued
    expect(order).toEqual([]);
    const barrier = store.whenCommitted().then(() => order.push("whenCommitted"));
    const busy = await Promise.race([barrier.then(() => "committed"), nextTurn().then(() => "next turn")]);
    expect(busy).toBe("next turn");
    await Promise.all([append, barrier]);
    expect(order).toEqual(["append", "whenCommitted"]);
    expect(countRows(path)).toBe(1);
  });

  it("commits a small batch on the calling thread when the writer is idle: done within the turn that flushes it", async () => {
    const path = tempPath();
    const store = openStore(path, { inlineCommitMaxRows: 4 });
    await store.saveStudy("s", CONFIG, "2026-01-01T00:00:00.000Z");
    const order: string[] = [];
    const small = Promise.all([0, 1, 2].map((i) => store.append(payloadEvent("t", i)))).then(() => order.push("small"));
    await nextTurn();
    await Promise.resolve(); // the commit already happened; only promise reactions are left
    expect(order).toEqual(["small"]);
    expect(countRows(path)).toBe(3);
    await small;
  });

  it("sends a batch over inlineCommitMaxRows to the writer, and keeps commit order when a small batch follows it", async () => {
    const path = tempPath();
    const store = openStore(path, { inlineCommitMaxRows: 4 });
    await store.saveStudy("s", CONFIG, "2026-01-01T00:00:00.000Z");
    const order: string[] = [];
    const large = Promise.all(Array.from({ length: 10 }, (_, i) => store.append(payloadEvent("big", i)))).then(() => order.push("large"));
    await nextTurn(); // the large batch is on the writer now
    expect(order).toEqual([]);
    const small = store.append(payloadEvent("small", 0)).then(() => order.push("small"));
    await Promise.all([large, small]);
    // the small batch could not be committed here while the large one was in flight: it went to the writer after it
    expect(order).toEqual(["large", "small"]);
    expect(seqOf(path, "small")).toBeGreaterThan(seqOf(path, "big"));
  });

  it("refuses a negative or fractional inlineCommitMaxRows, naming the value", () => {
    expect(() => new SqliteStore(tempPath(), { inlineCommitMaxRows: -1 })).toThrow("inlineCommitMaxRows must be an integer >= 0, got -1");
    expect(() => new SqliteStore(tempPath(), { inlineCommitMaxRows: 1.5 })).toThrow("got 1.5");
  });

  it("close commits what is still queued, then refuses appends and study saves", async () => {
    const path = tempPath();
    const store = new SqliteStore(path);
    await store.saveStudy("s", CONFIG, "2026-01-01T00:00:00.000Z");
    const queued = Array.from({ length: 25 }, (_, i) => store.append(payloadEvent("t", i)));
    const closed = store.close();
    await expect(store.append(payloadEvent("t", 99))).rejects.toThrow("the store is closed");
    await expect(store.saveStudy("late", CONFIG, "2026-01-01T00:00:00.000Z")).rejects.toThrow("the store is closed");
    await closed;
    expect((await Promise.allSettled(queued)).every((r) => r.status === "fulfilled")).toBe(true);
    expect(countRows(path)).toBe(25);
    await expect(store.append(payloadEvent("t", 100))).rejects.toThrow("the store is closed");
    expect(store.close()).toBe(closed);
  });

  it("keeps one payload row per (study, trial, step) and one end row per trial: the same row again passes, another is a conflict", async () => {
    const path = tempPath();
    const store = openStore(path);
    await store.saveStudy("s", CONFIG, "2026-01-01T00:00:00.000Z");
    await store.saveStudy("other", CONFIG, "2026-01-01T00:00:00.000Z");
    await store.append(payloadEvent("t", 3, '{"step":3,"first":true}'));
    // a re-delivery of the stored row (a retry after a failed commit) is acknowledged
    await expect(store.append(payloadEvent("t", 3, '{"step":3,"first":true}'))).resolves.toBeUndefined();
    // another row under the same key is what a second writer would store: never acknowledged
    const again = await Promise.allSettled([store.append(payloadEvent("t", 3, '{"step":3,"again":1}')), store.append(payloadEvent("t", 3, '{"step":3,"again":2}'))]);
    for (const r of again) {
      expect(r.status).toBe("rejected");
      expect(((r as PromiseRejectedResult).reason as Error).message).toMatch(/conflict: study s trial t step 3 is already stored with other content/);
    }
    await store.append(payloadEvent("t", 3, '{"step":3}', "other"));
    await store.append({ study: "s", trial: "t", kind: "end", state: "complete" });
    await expect(store.append({ study: "s", trial: "t", kind: "end", state: "complete" })).resolves.toBeUndefined();
    await expect(store.append({ study: "s", trial: "t", kind: "end", state: "failed" })).rejects.toThrow(/conflict: study s trial t end/);
    expect(countRows(path, "study = 's' AND kind = 'payload'")).toBe(1);
    expect(countRows(path, "study = 's' AND kind = 'end'")).toBe(1);
    expect(countRows(path, "study = 'other'")).toBe(1);
    expect([...store.events("s")]).toEqual([
      { study: "s", trial: "t", kind: "payload", step: 3, body: '{"step":3,"first":true}', format: "payload", verdict: '{"step":3}' },
      { study: "s", trial: "t", kind: "end", state: "complete" },
    ]);
  });

  it.each([0, 16])("a conflicting row fails its whole batch and commits none of it (inlineCommitMaxRows %i)", async (inlineCommitMaxRows) => {
    const path = tempPath();
    const store = openStore(path, { inlineCommitMaxRows });
    await store.saveStudy("s", CONFIG, "2026-01-01T00:00:00.000Z");
    await store.append(payloadEvent("t", 0, '{"step":0,"first":true}'));
    const batch = await Promise.allSettled([store.append(payloadEvent("u", 0)), store.append(payloadEvent("t", 0, '{"step":0,"second":true}'))]);
    expect(batch.map((r) => r.status)).toEqual(["rejected", "rejected"]);
    expect(countRows(path, "trial = 'u'")).toBe(0);
    // the innocent row stores on its own
    await store.append(payloadEvent("u", 0));
    expect(countRows(path, "trial = 'u'")).toBe(1);
  });

  it("events() gives a study's events in arrival order with body, format and verdict text as stored", async () => {
    const path = tempPath();
    const store = openStore(path);
    await store.saveStudy("s", CONFIG, "2026-01-01T00:00:00.000Z");
    await store.saveStudy("x", CONFIG, "2026-01-01T00:00:00.000Z");
    const request = '{"jsonrpc":"2.0","id":7,"method":"trial.report","params":{"study":"s","trial":"b","payload":{"step":0,"metrics":{"train_loss":NaN}}}}';
    const events: StoredEvent[] = [
      { study: "s", trial: "b", kind: "payload", step: 0, body: request, format: "request", verdict: '{ "stop" : true,"x":1e3 }' },
      { study: "x", trial: "a", kind: "payload", step: 0, body: "{}", format: "payload", verdict: "{}" },
      { study: "s", trial: "a", kind: "payload", step: 5, body: '{"step":5,  "metrics":{}}', format: "payload", verdict: '{"stop":false}' },
      { study: "s", trial: "b", kind: "end", state: "pruned" },
      { study: "s", trial: "a", kind: "payload", step: 2, body: '{"step":2}', format: "payload", verdict: '{"stop":false,"step":2}' },
    ];
    await Promise.all(events.slice(0, 3).map((e) => store.append(e)));
    for (const e of events.slice(3)) await store.append(e);
    expect([...store.events("s")]).toEqual(events.filter((e) => e.study === "s"));
    expect([...store.events("x")]).toEqual([events[1]]);
    expect([...store.events("nope")]).toEqual([]);
  });

  it("studies() round-trips each study's config JSON and creation time; saving again replaces the config", async () => {
    const path = tempPath();
    const store = openStore(path);
    const custom = resolveConfig({ max_steps: 7, protection: { percentile: 25, min_cohort: 3 }, rules: { EG: { grad_median_max: 123.5 } } });
    await store.saveStudy("a", CONFIG, "2026-01-01T00:00:00.000Z");
    await store.saveStudy("b", custom, "2026-02-02T00:00:00.000Z");
    expect(store.studies()).toEqual([
      { study: "a", config: CONFIG, created_at: "2026-01-01T00:00:00.000Z" },
      { study: "b", config: custom, created_at: "2026-02-02T00:00:00.000Z" },
    ]);
    await store.saveStudy("a", custom, "2026-01-01T00:00:00.000Z");
    expect(store.studies().find((s) => s.study === "a")?.config).toEqual(custom);
    await store.close();
    const reopened = openStore(path);
    const byName = new Map(reopened.studies().map((s) => [s.study, s]));
    expect(byName.size).toBe(2);
    expect(byName.get("a")).toEqual({ study: "a", config: custom, created_at: "2026-01-01T00:00:00.000Z" });
    expect(byName.get("b")).toEqual({ study: "b", config: custom, created_at: "2026-02-02T00:00:00.000Z" });
  });

  it('works on ":memory:": saves, appends and closes without error', async () => {
    const store = new SqliteStore(":memory:");
    await store.saveStudy("m", CONFIG, "2026-01-01T00:00:00.000Z");
    await Promise.all([store.append(payloadEvent("t", 0, "{}", "m")), store.append({ study: "m", trial: "t", kind: "end", state: "complete" })]);
    await expect(store.whenCommitted()).resolves.toBeUndefined();
    await expect(store.close()).resolves.toBeUndefined();
  });

  it("rejects every append with the database's reason when the writer cannot insert (events table without a format column)", async () => {
    const path = tempPath();
    exec(path, "CREATE TABLE studies (study TEXT PRIMARY KEY, config TEXT NOT NULL, created_at TEXT NOT NULL)");
    exec(path, "CREATE TABLE events (seq INTEGER PRIMARY KEY AUTOINCREMENT, study TEXT NOT NULL, trial TEXT NOT NULL, kind TEXT NOT NULL, step INTEGER, body TEXT NOT NULL, verdict TEXT)");
    const store = openStore(path);
    const first = await Promise.allSettled([store.saveStudy("s", CONFIG, "2026-01-01T00:00:00.000Z"), store.append(payloadEvent("t", 0))]);
    for (const r of first) {
      expect(r.status).toBe("rejected");
      expect((r as PromiseRejectedResult).reason).toBeInstanceOf(Error);
      expect(((r as PromiseRejectedResult).reason as Error).message).toContain("no column named format");
    }
    // the writer thread is gone: later appends are refused with the same cause, without hanging
    await new Promise((resolve) => setTimeout(resolve, 100));
    await expect(store.append(payloadEvent("t", 1))).rejects.toThrow("table events has no column named format");
    await expect(store.close()).resolves.toBeUndefined();
    expect(countRows(path)).toBe(0);
  });
});
