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
import type { Worker } from "node:worker_threads";
import Database from "better-sqlite3";
import type { StudyConfig } from "../diagnosis/types.js";
import type { CheckpointData } from "./checkpoint-thread.js";
import { createCommit, SCHEMA, type WriterRow } from "./commit.js";
import { DatabaseLock } from "./database-lock.js";
import { startThread } from "./start-thread.js";
import { StoreOpenError } from "./store-errors.js";
import type { EventStore, StoredEvent, StoredStudy } from "./stored-types.js";
import { readEvents, readStudies } from "./study-log.js";
import type { WriterData, WriterMessage, WriterReply } from "./writer-thread.js";

interface Pending {
  /** null for a barrier that only waits for the commit of what was queued before it. */
  row: WriterRow | null;
  resolve: () => void;
  reject: (err: Error) => void;
}

/** `PRAGMA application_id` of a bttackler database ("BTTK"). */
export const APPLICATION_ID = 0x4254544b;

/** createCommit on the main thread's connection; undefined when its statements do not prepare (the writer then reports why, on every append). */
function commitOnThisThread(db: Database.Database): ((rows: WriterRow[]) => void) | undefined {
  try {
    return createCommit(db);
  } catch {
    return undefined;
  }
}

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
    this.writer = startThread(import.meta.url, "writer-thread", { workerData: { path } satisfies WriterData });
    // an in-memory database is private to its connection: nothing to checkpoint from another one
    this.checkpointer =
      path === ":memory:" ? undefined : startThread(import.meta.url, "checkpoint-thread", { workerData: { path, intervalMs: 1000 } satisfies CheckpointData });
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
        worker.postMessage({ type: "close" } satisfies WriterMessage);
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
    this.writer.postMessage({ type: "commit", id, rows } satisfies WriterMessage);
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
