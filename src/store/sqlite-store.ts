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
 * Writes are group-committed: `append` queues a row and resolves once the
 * transaction holding it has committed; the queue is flushed on the next turn of
 * the event loop, so a burst of reports costs one commit. With WAL and
 * synchronous=NORMAL a committed row survives the process being killed (-9);
 * only an OS crash or power loss can lose the last transactions.
 */
import Database from "better-sqlite3";
import type { StudyConfig, TrialEndState } from "../diagnosis/types.js";

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

interface Pending {
  /** null for a barrier that only waits for the commit of what was queued before it. */
  event: StoredEvent | null;
  resolve: () => void;
  reject: (err: Error) => void;
}

interface EventRow {
  study: string;
  trial: string;
  kind: "payload" | "end";
  step: number | null;
  body: string;
  format: BodyFormat;
  verdict: string | null;
}

/** What the service needs from its durable log. */
export interface EventStore {
  studies(): StoredStudy[];
  events(study: string): Iterable<StoredEvent>;
  saveStudy(study: string, config: StudyConfig, createdAt: string): void;
  append(event: StoredEvent): Promise<void>;
  whenCommitted(): Promise<void>;
  close(): void;
}

export class SqliteStore implements EventStore {
  private readonly db: Database.Database;
  private readonly insertEvent: Database.Statement;
  private readonly insertStudy: Database.Statement;
  private readonly commitBatch: (batch: Pending[]) => void;
  private pending: Pending[] = [];
  private flushScheduled = false;

  constructor(readonly path: string) {
    this.db = new Database(path);
    this.db.pragma("journal_mode = WAL");
    this.db.pragma("synchronous = NORMAL");
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS studies (
        study TEXT PRIMARY KEY,
        config TEXT NOT NULL,
        created_at TEXT NOT NULL
      );
      CREATE TABLE IF NOT EXISTS events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
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
    `);
    this.insertEvent = this.db.prepare(
      "INSERT OR IGNORE INTO events (study, trial, kind, step, body, format, verdict) VALUES (?, ?, ?, ?, ?, ?, ?)",
    );
    this.insertStudy = this.db.prepare("INSERT OR REPLACE INTO studies (study, config, created_at) VALUES (?, ?, ?)");
    this.commitBatch = this.db.transaction((batch: Pending[]) => {
      for (const { event: e } of batch) {
        if (e === null) continue;
        if (e.kind === "payload") {
          this.insertEvent.run(e.study, e.trial, "payload", e.step, e.body, e.format, e.verdict);
        } else {
          this.insertEvent.run(e.study, e.trial, "end", null, JSON.stringify({ state: e.state }), "payload", null);
        }
      }
    });
  }

  studies(): StoredStudy[] {
    const rows = this.db.prepare("SELECT study, config, created_at FROM studies ORDER BY rowid").all() as {
      study: string;
      config: string;
      created_at: string;
    }[];
    return rows.map((r) => ({ study: r.study, config: JSON.parse(r.config) as StudyConfig, created_at: r.created_at }));
  }

  /** The events of a study in arrival order. */
  *events(study: string): Iterable<StoredEvent> {
    const rows = this.db
      .prepare("SELECT study, trial, kind, step, body, format, verdict FROM events WHERE study = ? ORDER BY seq")
      .iterate(study) as Iterable<EventRow>;
    for (const r of rows) {
      if (r.kind === "payload") {
        yield { study: r.study, trial: r.trial, kind: "payload", step: r.step ?? 0, body: r.body, format: r.format, verdict: r.verdict ?? "null" };
      } else {
        yield { study: r.study, trial: r.trial, kind: "end", state: (JSON.parse(r.body) as { state: TrialEndState }).state };
      }
    }
  }

  /** Saves a study's configuration at once (a study must exist before its events). */
  saveStudy(study: string, config: StudyConfig, createdAt: string): void {
    this.flush();
    this.insertStudy.run(study, JSON.stringify(config), createdAt);
  }

  /** Queues an event; resolves when it is committed. */
  append(event: StoredEvent): Promise<void> {
    return this.enqueue(event);
  }

  /** Resolves when everything queued so far is committed (at once when nothing is queued). */
  whenCommitted(): Promise<void> {
    return this.pending.length === 0 ? Promise.resolve() : this.enqueue(null);
  }

  private enqueue(event: StoredEvent | null): Promise<void> {
    return new Promise((resolve, reject) => {
      this.pending.push({ event, resolve, reject });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  /** Commits every queued event now. */
  flush(): void {
    this.flushScheduled = false;
    const batch = this.pending;
    if (batch.length === 0) return;
    this.pending = [];
    try {
      this.commitBatch(batch);
    } catch (err) {
      for (const p of batch) p.reject(err as Error);
      return;
    }
    for (const p of batch) p.resolve();
  }

  close(): void {
    this.flush();
    this.db.close();
  }
}
