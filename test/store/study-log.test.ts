/** Reading a service's database from outside, read-only, while the store still has it open (WAL). */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import { resolveConfig } from "../../src/schema/validate.js";
import { SqliteStore } from "../../src/store/sqlite-store.js";
import type { StoredEvent } from "../../src/store/stored-types.js";
import { storedPayload } from "../../src/store/stored-payload.js";
import { StudyLogError, StudyLogReader, readStudyLog } from "../../src/store/study-log.js";

const dirs: string[] = [];
const stores: SqliteStore[] = [];

function tempPath(): string {
  const dir = mkdtempSync(join(tmpdir(), "bttackler-study-log-"));
  dirs.push(dir);
  return join(dir, "service.db");
}

afterEach(async () => {
  await Promise.all(stores.splice(0).map((s) => s.close()));
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const payloadEvent = (study: string, trial: string, step: number): StoredEvent => ({
  study,
  trial,
  kind: "payload",
  step,
  body: JSON.stringify({ jsonrpc: "2.0", id: step, method: "trial.report", params: { study, trial, payload: { step, metrics: { train_loss: 1 } } } }),
  format: "request",
  verdict: JSON.stringify({ trial, step, stop: false, protected: false, symptoms: [] }),
});

async function openStore(path: string): Promise<SqliteStore> {
  const store = new SqliteStore(path);
  stores.push(store);
  await store.saveStudy("a", resolveConfig({ max_steps: 5 }), "2026-01-01T00:00:00.000Z");
  await store.saveStudy("b", resolveConfig({}), "2026-01-02T00:00:00.000Z");
  await store.append(payloadEvent("a", "t1", 0));
  await store.append(payloadEvent("b", "u", 0));
  await store.append(payloadEvent("a", "t1", 1));
  await store.append({ study: "a", trial: "t1", kind: "end", state: "complete" });
  return store;
}

describe("readStudyLog", () => {
  it("reads every study with its events in arrival order while the service's store is open", async () => {
    const path = tempPath();
    const store = await openStore(path);
    const log = readStudyLog(path);
    expect(log.map((s) => [s.study, s.created_at, s.config.max_steps, s.events.length])).toEqual([
      ["a", "2026-01-01T00:00:00.000Z", 5, 3],
      ["b", "2026-01-02T00:00:00.000Z", null, 1],
    ]);
    expect(log[0]?.events.map((e) => (e.kind === "payload" ? `${e.trial}@${e.step}` : `${e.trial}:${e.state}`))).toEqual(["t1@0", "t1@1", "t1:complete"]);
    const first = log[0]?.events[0];
    expect(first?.kind === "payload" && storedPayload(first.body, first.format)).toEqual({ step: 0, metrics: { train_loss: 1 } });
    // the store goes on writing after the read
    await store.append(payloadEvent("a", "t2", 0));
    expect(readStudyLog(path, ["a"]).map((s) => s.events.length)).toEqual([4]);
  });

  it("keeps one snapshot for the whole read even while rows are committed in between", async () => {
    const path = tempPath();
    const store = await openStore(path);
    const reader = new StudyLogReader(path);
    try {
      const counts = reader.snapshot((r) => {
        const before = r.eventCount("a");
        // another connection commits a row while the snapshot is open
        const other = new Database(path);
        other.prepare("INSERT INTO events (study, trial, kind, step, body, format, verdict) VALUES ('a', 'x', 'payload', 9, '{\"step\":9}', 'payload', 'null')").run();
        other.close();
        return [before, r.eventCount("a"), [...r.events("a")].length];
      });
      expect(counts).toEqual([3, 3, 3]);
      expect(reader.eventCount("a")).toBe(4);
    } finally {
      reader.close();
    }
    await store.whenCommitted();
  });

  it("never writes: a write through its connection is refused", async () => {
    const path = tempPath();
    await openStore(path);
    const reader = new StudyLogReader(path);
    try {
      expect(() => (reader as unknown as { db: Database.Database }).db.exec("DELETE FROM events")).toThrow(/readonly/);
    } finally {
      reader.close();
    }
  });

  it("refuses a missing file and a database without bttackler's tables", () => {
    const path = tempPath();
    expect(() => readStudyLog(path)).toThrow(StudyLogError);
    expect(() => readStudyLog(path)).toThrow(/cannot open/);
    const other = new Database(path);
    other.exec("CREATE TABLE t (x)");
    other.close();
    expect(() => readStudyLog(path)).toThrow(/not a bttackler database/);
    const text = join(dirs[0] ?? "", "text.db");
    writeFileSync(text, "hello, not sqlite\n".repeat(100));
    expect(() => readStudyLog(text)).toThrow(/cannot read .*file is not a database/);
  });
});
