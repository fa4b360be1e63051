/**
 * The service's durable log, in SQLite (better-sqlite3, WAL mode).
 *
 * Two tables: `studies` (name, resolved config, creation time) and `events`, the
 * accepted payloads and trial ends of every study in arrival order, each payload
 * row with the verdict that was answered for it. A payload is kept as the JSON text
 * it arrived in (`format` says whether the text is the payload itself or the whole
 * JSON-RPC request holding it at params.payload), which spares serialising it again
 * on the hot path; the store only keeps text and never interprets it. The engine is pure and
 * deterministic, so replaying a study's events in `seq` order rebuilds its exact
 * state (cohorts, streaks, protection, stops) after a restart.
 *
 * Writes are group-committed: `append` queues a row and resolves once the transaction
 * holding it has committed; the queue is committed on the next turn of the event loop,
 * so a burst of reports costs one commit. A large batch goes to a writer thread, so that
 * long commits never stall the thread that answers requests; a small one (at most
 * `inlineCommitMaxRows` rows), when the writer has nothing in flight, is committed at once
 * on the calling thread — at low rates that saves two thread hand-overs per report, and
 * one batch at a time is ever being written, so commits keep their order. WAL
 * checkpoints, which wait for the disk, run on a third thread (PASSIVE, once a second),
 * so they stall neither the answers nor the commits. With WAL and synchronous=NORMAL a committed row survives the
 * process being killed (-9); only an OS crash or power loss can lose the last
 * transactions. Study configurations go through the same queue, so a study's row
 * always commits before its events. The main thread's own connection only reads,
 * at start-up.
 */
import { createRequire } from "node:module";
import { Worker } from "node:worker_threads";
import Database from "better-sqlite3";
import type { StudyConfig, TrialEndState } from "../diagnosis/types.js";
import { DatabaseLock } from "./database-lock.js";
import { StoreOpenError } from "./store-errors.js";
import { readEvents, readStudies } from "./study-log.js";

/** How a payload row's body is written: the payload's JSON, or a JSON-RPC request with the payload at params.payload. */
export type BodyFormat = "payload" | "request";

export type StoredEvent =
  | { study: string; trial: string; kind: "payload"; step: number; body: string; format: BodyFormat; verdict: string }
  | { study: string; trial: string; kind: "end"; state: TrialEndState };

export interface StoredStudy {
  study: string;
  config: StudyConfig;
  created_at: string;
}

/** A row for the writer: "e" + an events row, or "s" + a studies row (study, config JSON, created_at). */
type WriterRow = ["e", ...EventValues] | ["s", string, string, string];

interface Pending {
  /** null for a barrier that only waits for the commit of what was queued before it. */
  row: WriterRow | null;
  resolve: () => void;
  reject: (err: Error) => void;
}

/** What the service needs from its durable log. */
export interface EventStore {
  studies(): StoredStudy[];
  events(study: string): Iterable<StoredEvent>;
  saveStudy(study: string, config: StudyConfig, createdAt: string): Promise<void>;
  append(event: StoredEvent): Promise<void>;
  whenCommitted(): Promise<void>;
  close(): Promise<void>;
}

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS studies (
    study TEXT PRIMARY KEY,
    config TEXT NOT NULL,
    created_at TEXT NOT NULL
  );
  CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY, -- the rowid: rows are never deleted, so it only grows (AUTOINCREMENT would add a write per insert)
    study TEXT NOT NULL REFERENCES studies(study),
    trial TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('payload', 'end')),
    step INTEGER,
    body TEXT NOT NULL,
    format TEXT NOT NULL DEFAULT 'payload' CHECK (format IN ('payload', 'request')),
    verdict TEXT
  );
  CREATE UNIQUE INDEX IF NOT EXISTS events_payload_once ON events(study, trial, step) WHERE kind = 'payload';
  CREATE UNIQUE INDEX IF NOT EXISTS events_end_once ON events(study, trial) WHERE kind = 'end';
`;

const INSERT_EVENT = "INSERT OR IGNORE INTO events (study, trial, kind, step, body, format, verdict) VALUES (?, ?, ?, ?, ?, ?, ?)";
const INSERT_STUDY = "INSERT OR REPLACE INTO studies (study, config, created_at) VALUES (?, ?, ?)";
/** The row already stored under an event's key (study, trial, kind, step), when an insert was ignored. */
const STORED_EVENT = "SELECT body, verdict FROM events WHERE study = ? AND trial = ? AND kind = ? AND step IS ?";

/** The statements a commit runs, handed to the writer thread as text. */
interface CommitSql {
  insertEvent: string;
  insertStudy: string;
  storedEvent: string;
}

const COMMIT_SQL: CommitSql = { insertEvent: INSERT_EVENT, insertStudy: INSERT_STUDY, storedEvent: STORED_EVENT };

/** `PRAGMA application_id` of a bttackler database ("BTTK"). */
export const APPLICATION_ID = 0x4254544b;

/** One events row, in INSERT_EVENT's column order. */
type EventValues = [string, string, "payload" | "end", number | null, string, BodyFormat, string | null];

/**
 * The commit of a batch on a connection: one transaction that stores every row or none.
 * An event whose key (study, trial, step; or study, trial for an end) is already taken
 * by the same row is a re-delivery and passes; by another row, it is a conflict (another
 * writer on the file) and fails the batch, so that nothing is acknowledged that is not
 * what the file holds. The writer thread runs this function's source text: it refers
 * to nothing outside itself.
 */
function createCommit(db: Database.Database, sql: CommitSql): (rows: WriterRow[]) => void {
  const insertEvent = db.prepare(sql.insertEvent);
  const insertStudy = db.prepare(sql.insertStudy);
  const storedEvent = db.prepare(sql.storedEvent);
  return db.transaction((rows: WriterRow[]) => {
    for (const row of rows) {
      if (row[0] === "s") {
        insertStudy.run(row.slice(1));
        continue;
      }
      if (insertEvent.run(row.slice(1)).changes === 1) continue;
      const stored = storedEvent.get(row[1], row[2], row[3], row[4]) as { body: string; verdict: string | null } | undefined;
      if (stored === undefined || stored.body !== row[5] || stored.verdict !== row[7]) {
        const what = row[3] === "end" ? "end" : `step ${String(row[4])}`;
        throw new Error(`conflict: study ${row[1]} trial ${row[2]} ${what} is already stored with other content (another writer on this database?)`);
      }
    }
  });
}

/** createCommit on the main thread's connection; undefined when its statements do not prepare (the writer then reports why, on every append). */
function commitOnThisThread(db: Database.Database): ((rows: WriterRow[]) => void) | undefined {
  try {
    return createCommit(db, COMMIT_SQL);
  } catch {
    return undefined;
  }
}

/**
 * The writer thread. Plain JavaScript evaluated by the Worker so that it runs the same
 * from the sources and from the build; it receives the driver's resolved path, and
 * builds its commit from createCommit's source.
 */
const WRITER = `
const { parentPort, workerData } = require("node:worker_threads");
const Database = require(workerData.driver);
const createCommit = ${createCommit.toString()};
let db, commit;
try {
  db = new Database(workerData.path);
  db.pragma("busy_timeout = 10000");
  db.pragma("synchronous = NORMAL");
  db.pragma("wal_autocheckpoint = 0");
  db.exec(workerData.schema); // an in-memory database is private to its connection: this one needs the tables too
  commit = createCommit(db, workerData.sql);
} catch (err) {
  // a SqliteError reaches the main thread as a bare { code }, without its message: throw a plain Error
  throw new Error(String((err && err.message) || err));
}
parentPort.on("message", (m) => {
  if (m.type === "commit") {
    try {
      commit(m.rows);
      parentPort.postMessage({ type: "done", id: m.id });
    } catch (err) {
      parentPort.postMessage({ type: "failed", id: m.id, error: String((err && err.message) || err) });
    }
  } else if (m.type === "close") {
    db.close();
    parentPort.postMessage({ type: "closed" });
    parentPort.close();
  }
});
`;

/** The checkpoint thread: copies the WAL into the database once a second without blocking the writer. */
const CHECKPOINTER = `
const { parentPort, workerData } = require("node:worker_threads");
const Database = require(workerData.driver);
const db = new Database(workerData.path);
db.pragma("busy_timeout = 10000");
const timer = setInterval(() => {
  try { db.pragma("wal_checkpoint(PASSIVE)"); } catch (err) { /* busy: try again at the next tick */ }
}, workerData.intervalMs);
parentPort.on("message", (m) => {
  if (m.type === "close") {
    clearInterval(timer);
    try { db.pragma("wal_checkpoint(TRUNCATE)"); } catch (err) { /* leave the WAL for the next start */ }
    db.close();
    parentPort.close();
  }
});
`;

type WriterReply = { type: "done"; id: number } | { type: "failed"; id: number; error: string } | { type: "closed" };

function eventRow(e: StoredEvent): WriterRow {
  return e.kind === "payload"
    ? ["e", e.study, e.trial, "payload", e.step, e.body, e.format, e.verdict]
    : ["e", e.study, e.trial, "end", null, JSON.stringify({ state: e.state }), "payload", null];
}

export interface SqliteStoreOptions {
  /**
   * Largest batch committed on the calling thread when the writer thread is idle (0: every
   * batch goes to the writer). Default 16: a commit of that size takes well under a millisecond.
   */
  inlineCommitMaxRows?: number;
}

/**
 * Opens (or creates) a service's database: a new file or an empty database gets the
 * tables and bttackler's application id; a file that holds other tables, or another
 * application's id, is refused, and so is a file that is not SQLite. Every refusal is a
 * StoreOpenError naming the path.
 */
function openServiceDatabase(path: string): Database.Database {
  let db: Database.Database;
  try {
    db = new Database(path);
  } catch (err) {
    throw new StoreOpenError(`cannot open ${path}: ${(err as Error).message}`);
  }
  try {
    db.pragma("busy_timeout = 10000");
    const appId = db.pragma("application_id", { simple: true }) as number;
    const tables = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'").all() as { name: string }[]).map((t) => t.name);
    const ours = tables.includes("studies") && tables.includes("events");
    if (appId !== APPLICATION_ID && (appId !== 0 || (tables.length > 0 && !ours))) {
      const held = appId !== 0 ? `application id ${appId}` : `tables ${tables.join(", ")}`;
      throw new StoreOpenError(`${path} is not a bttackler database (it holds ${held}); choose another --db`);
    }
    db.pragma("journal_mode = WAL");
    db.pragma("synchronous = NORMAL");
    db.pragma("wal_autocheckpoint = 0"); // the checkpoint thread's job, never a commit's
    db.exec(SCHEMA);
    if (appId === 0 && path !== ":memory:") db.pragma(`application_id = ${APPLICATION_ID}`);
    return db;
  } catch (err) {
    db.close();
    if (err instanceof StoreOpenError) throw err;
    throw new StoreOpenError(`cannot use ${path} as a bttackler database: ${(err as Error).message}`);
  }
}

export class SqliteStore implements EventStore {
  private readonly db: Database.Database;
  /** Held while the store is open, so that no other service writes to the file (none for ":memory:"). */
  private readonly lock: DatabaseLock | undefined;
  private readonly inlineCommitMaxRows: number;
  /** Commits a batch on this thread's connection (undefined: every batch goes to the writer). */
  private readonly commitHere: ((rows: WriterRow[]) => void) | undefined;
  private readonly writer: Worker;
  private readonly checkpointer: Worker | undefined;
  private readonly inFlight = new Map<number, Pending[]>();
  private pending: Pending[] = [];
  private flushScheduled = false;
  private nextBatch = 1;
  private writerError: Error | undefined;
  private closing: Promise<void> | undefined;

  constructor(
    readonly path: string,
    options: SqliteStoreOptions = {},
  ) {
    const inline = options.inlineCommitMaxRows ?? 16;
    if (!Number.isInteger(inline) || inline < 0) throw new RangeError(`inlineCommitMaxRows must be an integer >= 0, got ${String(inline)}`);
    this.lock = path === ":memory:" ? undefined : DatabaseLock.acquire(path);
    try {
      this.db = openServiceDatabase(path);
    } catch (err) {
      this.lock?.release();
      throw err;
    }
    // an in-memory database is private to its connection: only the writer's holds the rows
    this.inlineCommitMaxRows = path === ":memory:" ? 0 : inline;
    this.commitHere = this.inlineCommitMaxRows > 0 ? commitOnThisThread(this.db) : undefined;
    const driver = createRequire(import.meta.url).resolve("better-sqlite3");
    this.writer = new Worker(WRITER, { eval: true, workerData: { path, driver, schema: SCHEMA, sql: COMMIT_SQL } });
    // an in-memory database is private to its connection: nothing to checkpoint from another one
    this.checkpointer = path === ":memory:" ? undefined : new Worker(CHECKPOINTER, { eval: true, workerData: { path, driver, intervalMs: 1000 } });
    this.checkpointer?.on("error", () => {
      /* checkpoints are an optimisation; the writer keeps every commit */
    });
    this.writer.on("message", (m: WriterReply) => this.onWriterReply(m));
    this.writer.on("error", (err) => this.failAll(err));
    this.writer.on("exit", (code) => {
      if (this.closing === undefined) this.failAll(new Error(`the database writer stopped (exit code ${code})`));
    });
  }

  studies(): StoredStudy[] {
    return readStudies(this.db);
  }

  /** The events of a study in arrival order (read at start-up, before any append). */
  events(study: string): Iterable<StoredEvent> {
    return readEvents(this.db, study);
  }

  /** Queues a study's configuration (created or replaced); it commits before anything queued after it. */
  saveStudy(study: string, config: StudyConfig, createdAt: string): Promise<void> {
    return this.enqueue(["s", study, JSON.stringify(config), createdAt]);
  }

  /** Queues an event; resolves when it is committed, rejects when it could not be. */
  append(event: StoredEvent): Promise<void> {
    return this.enqueue(eventRow(event));
  }

  /** Resolves when everything queued so far is committed (at once when nothing is queued or in flight). */
  whenCommitted(): Promise<void> {
    return this.pending.length === 0 && this.inFlight.size === 0 ? Promise.resolve() : this.enqueue(null);
  }

  /** Commits what is queued, stops the writer and closes the database. */
  close(): Promise<void> {
    if (this.closing === undefined) {
      const drained = this.whenCommitted().catch(() => undefined);
      this.flush();
      this.closing = drained
        .then(() => this.stopWriter())
        .then(() => {
          this.db.close();
        })
        .finally(() => this.lock?.release());
    }
    return this.closing;
  }

  private async stopWriter(): Promise<void> {
    const stop = (worker: Worker | undefined): Promise<void> =>
      new Promise((resolve) => {
        if (worker === undefined || worker.threadId === -1) return resolve();
        worker.once("exit", () => resolve());
        worker.postMessage({ type: "close" });
      });
    await (this.writerError === undefined ? stop(this.writer) : Promise.resolve());
    await stop(this.checkpointer);
  }

  private enqueue(row: WriterRow | null): Promise<void> {
    if (this.writerError !== undefined) return Promise.reject(this.writerError);
    if (this.closing !== undefined) return Promise.reject(new Error("the store is closed"));
    return new Promise((resolve, reject) => {
      this.pending.push({ row, resolve, reject });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  /** Commits every queued event as one transaction: here when the batch is small and the writer idle, else on the writer. */
  private flush(): void {
    this.flushScheduled = false;
    const batch = this.pending;
    if (batch.length === 0) return;
    this.pending = [];
    const id = this.nextBatch++;
    const rows = batch.flatMap((p) => (p.row === null ? [] : [p.row]));
    if (this.commitHere !== undefined && this.inFlight.size === 0 && rows.length <= this.inlineCommitMaxRows) {
      this.inFlight.set(id, batch);
      let reply: WriterReply;
      try {
        this.commitHere(rows);
        reply = { type: "done", id };
      } catch (err) {
        reply = { type: "failed", id, error: err instanceof Error ? err.message : String(err) };
      }
      this.onWriterReply(reply);
      return;
    }
    this.inFlight.set(id, batch);
    this.writer.postMessage({ type: "commit", id, rows });
  }

  private onWriterReply(m: WriterReply): void {
    if (m.type === "closed") return;
    const batch = this.inFlight.get(m.id);
    this.inFlight.delete(m.id);
    for (const p of batch ?? []) {
      if (m.type === "done") p.resolve();
      else p.reject(new Error(m.error));
    }
  }

  private failAll(err: Error): void {
    this.writerError ??= err; // the first error is the cause; the exit that follows it says less
    for (const batch of this.inFlight.values()) for (const p of batch) p.reject(err);
    this.inFlight.clear();
    for (const p of this.pending) p.reject(err);
    this.pending = [];
  }
}
