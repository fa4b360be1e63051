/** The study registry over a real SqliteStore on temp files: rebuild, open, idempotency, refusals, storage failures, stop logging. */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { JSONRPCErrorException } from "json-rpc-2.0";
import { afterEach, describe, expect, it } from "vitest";
import { DiagnosisEngine } from "../../src/diagnosis/engine.js";
import type { PayloadV1 } from "../../src/diagnosis/types.js";
import { silentLog, type Log, type LogFields } from "../../src/protocol/log.js";
import { StudyRegistry } from "../../src/protocol/study-registry.js";
import { resolveConfig } from "../../src/schema/validate.js";
import { SqliteStore } from "../../src/store/sqlite-store.js";
import { countRows, exec } from "../store/db-helpers.js";

const dirs: string[] = [];
const stores: SqliteStore[] = [];

function tempPath(): string {
  const dir = mkdtempSync(join(tmpdir(), "bttackler-registry-"));
  dirs.push(dir);
  return join(dir, "registry.db");
}

function openStore(path: string): SqliteStore {
  const store = new SqliteStore(path);
  stores.push(store);
  return store;
}

afterEach(async () => {
  await Promise.all(stores.splice(0).map((s) => s.close()));
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

interface Entry {
  level: "debug" | "info" | "warn" | "error";
  msg: string;
  fields: LogFields | undefined;
}

function capturingLog(): Log & { entries: Entry[] } {
  const entries: Entry[] = [];
  const at = (level: Entry["level"]) => (msg: string, fields?: LogFields) => void entries.push({ level, msg, fields });
  return { entries, debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") };
}

const fixedNow = (iso: string) => () => new Date(iso);

/** The JSON-RPC error a promise or call is refused with. */
async function rpcError(run: () => unknown): Promise<JSONRPCErrorException> {
  try {
    await run();
  } catch (err) {
    if (err instanceof JSONRPCErrorException) return err;
    throw err;
  }
  throw new Error("expected a JSONRPCErrorException");
}



const loss = (step: number, train_loss: number | null): PayloadV1 => ({ step, metrics: { train_loss } });

/** The JSON-RPC request text that carries `payload` at params.payload; null train_loss is written as a bare NaN token. */
function requestText(study: string, trial: string, payload: PayloadV1): string {
  const text = JSON.stringify({ jsonrpc: "2.0", id: `${trial}-${payload.step}`, method: "trial.reportAndAssess", params: { study, trial, payload } });
  return text.replace('"train_loss":null', '"train_loss":NaN');
}

const CONFIG = { max_steps: 10, protection: { min_cohort: 3, percentile: 50 } };

type Step = { trial: string; payload: PayloadV1; asRequest: boolean } | { trial: string; end: "complete" | "pruned" | "failed" };

/**
 * Trials a, b, c report step 0 (a cohort of three), d then reports a far better loss and is
 * protected; n reports NaN (in request text) and stops; a and n end; b and d go on.
 */
const HISTORY: Step[] = [
  { trial: "a", payload: loss(0, 2.0), asRequest: false },
  { trial: "b", payload: loss(0, 1.8), asRequest: true },
  { trial: "c", payload: loss(0, 1.6), asRequest: false },
  { trial: "d", payload: loss(0, 0.5), asRequest: true },
  { trial: "n", payload: loss(0, null), asRequest: true },
  { trial: "n", payload: loss(1, 1.0), asRequest: false },
  { trial: "a", end: "complete" },
  { trial: "n", end: "failed" },
  { trial: "b", payload: loss(1, 1.5), asRequest: true },
  { trial: "d", payload: loss(1, 0.4), asRequest: false },
];

async function play(registry: StudyRegistry, steps: readonly Step[]): Promise<void> {
  for (const s of steps) {
    if ("end" in s) await registry.end("s", s.trial, s.end);
    else await registry.report("s", s.trial, s.payload, s.asRequest ? requestText("s", s.trial, s.payload) : undefined);
  }
}

describe("StudyRegistry", () => {
  it("rebuilds history, trial summaries, protection and stops from payload and request bodies after close and reopen", async () => {
    const path = tempPath();
    const store = openStore(path);
    const registry = new StudyRegistry(store, silentLog, fixedNow("2026-03-01T10:00:00.000Z"));
    await registry.open("s", CONFIG);
    await play(registry, HISTORY);

    const trials = registry.trials("s");
    const histories = Object.fromEntries(["a", "b", "c", "d", "n"].map((t) => [t, registry.history("s", t)]));
    const list = registry.list();
    expect(trials.map((t) => [t.trial, t.last_step, t.protected, t.stopped_at, t.ended])).toEqual([
      ["a", 0, false, undefined, "complete"],
      ["b", 1, false, undefined, undefined],
      ["c", 0, false, undefined, undefined],
      ["d", 1, true, undefined, undefined],
      ["n", 1, false, 0, "failed"],
    ]);
    expect(trials.find((t) => t.trial === "n")?.reason).toContain("NF non_finite_metric");
    expect(list).toEqual([{ study: "s", created_at: "2026-03-01T10:00:00.000Z", trials: 5, stopped: 1 }]);
    await store.close();

    const reopened = openStore(path);
    const rows = [...reopened.events("s")];
    expect(rows.map((e) => (e.kind === "payload" ? `${e.trial}@${e.step}:${e.format}` : `${e.trial}:end:${e.state}`))).toEqual([
      "a@0:payload",
      "b@0:request",
      "c@0:payload",
      "d@0:request",
      "n@0:request",
      "n@1:payload",
      "a:end:complete",
      "n:end:failed",
      "b@1:request",
      "d@1:payload",
    ]);
    const nanRow = rows[4];
    expect(nanRow?.kind === "payload" && nanRow.body).toBe(requestText("s", "n", loss(0, null)));
    expect(nanRow?.kind === "payload" && nanRow.body).toContain('"train_loss":NaN');

    const log = capturingLog();
    const rebuilt = new StudyRegistry(reopened, log, fixedNow("2027-01-01T00:00:00.000Z"));
    expect(rebuilt.trials("s")).toEqual(trials);
    for (const [t, verdicts] of Object.entries(histories)) expect(rebuilt.history("s", t)).toEqual(verdicts);
    expect(rebuilt.list()).toEqual(list);
    expect(log.entries).toEqual([{ level: "info", msg: "study restored", fields: { study: "s", payloads: 8, trials: 5 } }]);

    // the rebuilt engine goes on as one that never stopped: same cohort, same stops, same ends
    const reference = new DiagnosisEngine(resolveConfig(CONFIG));
    for (const s of HISTORY) {
      if ("end" in s) reference.end(s.trial, s.end);
      else reference.report(s.trial, s.payload);
    }
    const fresh = await rebuilt.report("s", "e", loss(0, 0.3));
    const expected = reference.report("e", loss(0, 0.3));
    expect(fresh).toEqual({ verdict: expected, verdictJson: JSON.stringify(expected), duplicate: false });
    expect(fresh.verdict.protected).toBe(true);
    const stopped = await rebuilt.report("s", "n", loss(0, 5));
    expect(stopped.duplicate).toBe(true);
    expect(stopped.verdict.stop).toBe(true);
    expect((await rpcError(() => rebuilt.report("s", "a", loss(1, 1)))).code).toBe(-32003);
    expect((await rebuilt.report("s", "b", loss(2, 1.2))).verdict).toEqual(reference.report("b", loss(2, 1.2)));
  });

  it("open: the same config is a no-op, another config replaces it before any event and is refused (-32004) after", async () => {
    const path = tempPath();
    const store = openStore(path);
    const log = capturingLog();
    const registry = new StudyRegistry(store, log, fixedNow("2026-03-01T10:00:00.000Z"));

    const first = await registry.open("s", { max_steps: 20 });
    expect(first).toEqual({ study: "s", config: resolveConfig({ max_steps: 20 }), created: true });
    expect(await registry.open("s", { max_steps: 20 })).toEqual({ ...first, created: false });
    expect(await registry.open("s")).toEqual({ ...first, created: false });

    const replaced = await registry.open("s", { max_steps: 30 });
    expect(replaced).toEqual({ study: "s", config: resolveConfig({ max_steps: 30 }), created: false });
    expect(store.studies()).toEqual([{ study: "s", config: resolveConfig({ max_steps: 30 }), created_at: "2026-03-01T10:00:00.000Z" }]);

    await registry.report("s", "t", loss(0, 1));
    expect(await registry.open("s", { max_steps: 30 })).toEqual({ ...replaced, created: false });
    expect(registry.trials("s")).toHaveLength(1);
    const conflict = await rpcError(() => registry.open("s", { max_steps: 40 }));
    expect(conflict.code).toBe(-32004);
    expect(conflict.message).toContain("study s already has events diagnosed with another config");
    expect(store.studies().map((s) => s.config.max_steps)).toEqual([30]);
    expect(registry.trials("s")).toHaveLength(1);
    expect(log.entries.filter((e) => e.msg === "study opened")).toEqual([{ level: "info", msg: "study opened", fields: { study: "s" } }]);
  });

  it("creates a study reported to without study.open, with the default config", async () => {
    const path = tempPath();
    const store = openStore(path);
    const log = capturingLog();
    const registry = new StudyRegistry(store, log, fixedNow("2026-03-01T10:00:00.000Z"));
    const answer = await registry.report("fresh", "t", loss(0, 1));
    expect(answer.duplicate).toBe(false);
    expect(registry.list()).toEqual([{ study: "fresh", created_at: "2026-03-01T10:00:00.000Z", trials: 1, stopped: 0 }]);
    expect(store.studies()).toEqual([{ study: "fresh", config: resolveConfig({}), created_at: "2026-03-01T10:00:00.000Z" }]);
    expect(countRows(path, "study = 'fresh'")).toBe(1);
    expect(log.entries.filter((e) => e.msg === "study opened").map((e) => e.fields)).toEqual([{ study: "fresh" }]);
  });

  it("one rule for unknown names: end, assess and history answer -32001 for a study and -32002 for a trial, creating and storing nothing", async () => {
    const path = tempPath();
    const store = openStore(path);
    const registry = new StudyRegistry(store, silentLog);
    await registry.report("s", "t", loss(0, 1));
    const refusals = async (study: string, trial: string): Promise<[number, string][]> => [
      [(await rpcError(() => registry.end(study, trial, "complete"))).code, (await rpcError(() => registry.end(study, trial, "complete"))).message],
      [(await rpcError(() => registry.assess(study, trial))).code, (await rpcError(() => registry.assess(study, trial))).message],
      [(await rpcError(() => registry.history(study, trial))).code, (await rpcError(() => registry.history(study, trial))).message],
    ];
    expect(await refusals("ghost", "t")).toEqual(Array.from({ length: 3 }, () => [-32001, "unknown study ghost"]));
    expect(await refusals("s", "ghost")).toEqual(Array.from({ length: 3 }, () => [-32002, "unknown trial ghost of study s"]));
    expect((await rpcError(() => registry.trials("ghost"))).code).toBe(-32001);
    // a known trial, at a step it has no verdict for: still -32002
    expect((await rpcError(() => registry.assess("s", "t", 5))).code).toBe(-32002);
    await store.whenCommitted();
    expect(registry.list().map((l) => [l.study, l.trials])).toEqual([["s", 1]]);
    expect(store.studies().map((x) => x.study)).toEqual(["s"]);
    expect(countRows(path)).toBe(1);
    // the unknown trial was not ended: its first payload is accepted
    expect((await registry.report("s", "ghost", loss(0, 1))).verdict.step).toBe(0);
  });

  it("answers a re-delivered step with duplicate: true and the first verdict, and stores no second row", async () => {
    const path = tempPath();
    const store = openStore(path);
    const registry = new StudyRegistry(store, silentLog);
    await registry.open("s", CONFIG);
    const first = await registry.report("s", "t", loss(0, 1.0));
    const again = await registry.report("s", "t", loss(0, null), requestText("s", "t", loss(0, null)));
    expect(first.duplicate).toBe(false);
    expect(again).toEqual({ verdict: first.verdict, verdictJson: first.verdictJson, duplicate: true });
    expect(JSON.parse(first.verdictJson)).toEqual(first.verdict);
    expect(again.verdict.stop).toBe(false);
    expect(countRows(path)).toBe(1);
    expect([...store.events("s")]).toEqual([
      { study: "s", trial: "t", kind: "payload", step: 0, body: JSON.stringify(loss(0, 1.0)), format: "payload", verdict: JSON.stringify(first.verdict) },
    ]);
  });

  it("refuses a step older than the trial's latest with -32003 and stores nothing", async () => {
    const path = tempPath();
    const store = openStore(path);
    const registry = new StudyRegistry(store, silentLog);
    await registry.report("s", "t", loss(2, 1.0));
    const late = await rpcError(() => registry.report("s", "t", loss(1, 1.0)));
    expect(late.code).toBe(-32003);
    expect(late.message).toBe("step 1 of trial t arrives after step 2; steps must increase");
    await store.whenCommitted();
    expect(countRows(path)).toBe(1);
    expect(registry.trials("s")).toEqual([{ trial: "t", last_step: 2, protected: false }]);
    expect(registry.history("s", "t").map((v) => v.step)).toEqual([2]);
  });

  it("answers -32005 and logs a storage failure when the store is closed, for a known and for a new study", async () => {
    const path = tempPath();
    const store = openStore(path);
    const log = capturingLog();
    const registry = new StudyRegistry(store, log);
    await registry.report("s", "t", loss(0, 1.0));
    await store.close();

    const known = await rpcError(() => registry.report("s", "t", loss(1, 1.0)));
    expect(known.code).toBe(-32005);
    expect(known.message).toBe("the event could not be stored: the store is closed");
    const unknown = await rpcError(() => registry.report("new", "t", loss(0, 1.0)));
    expect(unknown.code).toBe(-32005);
    expect(unknown.message).toBe("the event could not be stored: the store is closed");
    const end = await rpcError(() => registry.end("s", "t", "complete"));
    expect(end.code).toBe(-32005);
    expect(log.entries.filter((e) => e.level === "error")).toEqual(
      Array.from({ length: 3 }, () => ({ level: "error", msg: "storage failure", fields: { error: "the store is closed" } })),
    );
    expect(countRows(path)).toBe(1);
  });

  it("stores again, on re-delivery, a step, an end and a new study whose first commit failed", async () => {
    const path = tempPath();
    const store = openStore(path);
    const registry = new StudyRegistry(store, silentLog);
    await registry.open("s", CONFIG);
    const fault = (when: string, table = "events"): void =>
      exec(path, `CREATE TRIGGER fault BEFORE INSERT ON ${table} WHEN ${when} BEGIN SELECT RAISE(ABORT, 'disk says no'); END`);
    const heal = (): void => exec(path, "DROP TRIGGER fault");

    fault("NEW.kind = 'payload'");
    const failed = await rpcError(() => registry.report("s", "t", loss(0, 1.0)));
    expect([failed.code, failed.message]).toEqual([-32005, "the event could not be stored: disk says no"]);
    heal();
    expect((await registry.report("s", "t", loss(0, 1.0))).duplicate).toBe(true);
    expect(countRows(path, "kind = 'payload'")).toBe(1);

    fault("NEW.kind = 'end'");
    expect((await rpcError(() => registry.end("s", "t", "complete"))).code).toBe(-32005);
    heal();
    await registry.end("s", "t", "pruned");
    expect([...store.events("s")].filter((e) => e.kind === "end")).toEqual([{ study: "s", trial: "t", kind: "end", state: "complete" }]);

    fault("NEW.study = 'late'", "studies");
    expect((await rpcError(() => registry.report("late", "t", loss(0, 1.0)))).code).toBe(-32005);
    heal();
    expect((await registry.report("late", "t", loss(0, 1.0))).duplicate).toBe(false);
    expect(store.studies().map((s) => s.study)).toEqual(["s", "late"]);
    expect(countRows(path, "study = 'late'")).toBe(1);
  });

  it("logs a stop once, with study, trial, step, symptoms and reason, and not again on later steps, re-delivery or rebuild", async () => {
    const path = tempPath();
    const store = openStore(path);
    const log = capturingLog();
    const registry = new StudyRegistry(store, log);
    await registry.open("s", CONFIG);
    await registry.report("s", "t", loss(0, 1.0));
    const sick: PayloadV1 = { step: 1, metrics: { train_loss: null }, layers: [{ name: "l0", grad_abs_mean: null }] };
    const stop = await registry.report("s", "t", sick);
    expect(stop.verdict.stop).toBe(true);
    await registry.report("s", "t", sick);
    expect((await registry.report("s", "t", loss(2, 1.0))).verdict.stopped_at).toBe(1);
    const stops = log.entries.filter((e) => e.msg === "trial stopped");
    expect(stops).toEqual([
      { level: "info", msg: "trial stopped", fields: { study: "s", trial: "t", step: 1, symptoms: ["NF"], reason: stop.verdict.reason } },
    ]);
    expect(stop.verdict.reason).toContain("NF non_finite_metric");
    expect(stop.verdict.reason).toContain("NF non_finite_layer");
    await store.close();

    const again = capturingLog();
    new StudyRegistry(openStore(path), again);
    expect(again.entries.map((e) => e.msg)).toEqual(["study restored"]);
  });
});
