/**
 * Read-only access to a service's SQLite log (the `studies` and `events` tables written
 * by SqliteStore), for reports and other tools that look at a study from outside.
 *
 * The connection is opened read-only and never writes, so it may be used while a service
 * is running on the same file: in WAL mode a reader sees the last committed transaction
 * and blocks neither the service's writer nor its checkpoints for longer than it reads.
 * `read` takes one read transaction, so the studies and events it returns are one
 * consistent snapshot even while rows are being appended.
 */
import Database from "better-sqlite3";
import type { StudyConfig, TrialEndState } from "../diagnosis/types.js";
import type { BodyFormat, StoredEvent, StoredStudy } from "./stored-types.js";

/** The file is missing, unreadable, or not a bttackler database. */
export class StudyLogError extends Error {
  override readonly name = "StudyLogError";
}

interface StudyRow {
  study: string;
  config: string;
  created_at: string;
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

/** A study's row and its events in arrival order. */
export interface LoggedStudy extends StoredStudy {
  events: StoredEvent[];
}

export class StudyLogReader {
  private readonly db: Database.Database;

  /** Opens `path` read-only; throws StudyLogError when it is missing or has no bttackler tables. */
  constructor(readonly path: string) {
    try {
      this.db = new Database(path, { readonly: true, fileMustExist: true });
    } catch (err) {
      throw new StudyLogError(`cannot open ${path}: ${(err as Error).message}`);
    }
    try {
      this.db.pragma("busy_timeout = 10000");
      const tables = this.db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name IN ('studies', 'events')").all() as { name: string }[];
      if (tables.length !== 2) throw new StudyLogError(`${path} is not a bttackler database (no studies and events tables)`);
    } catch (err) {
      this.db.close();
      if (err instanceof StudyLogError) throw err;
      throw new StudyLogError(`cannot read ${path}: ${(err as Error).message}`);
    }
  }

  /** The studies, in creation order. */
  studies(): StoredStudy[] {
    return readStudies(this.db);
  }

  /** How many events a study has (payloads and trial ends). */
  eventCount(study: string): number {
    return (this.db.prepare("SELECT count(*) AS n FROM events WHERE study = ?").get(study) as { n: number }).n;
  }

  /** A study's events in arrival order, read lazily. */
  events(study: string): IterableIterator<StoredEvent> {
    return readEvents(this.db, study);
  }

  /**
   * Runs `read` inside one read transaction: everything it reads through this reader is
   * the same snapshot of the file. What `read` returns must not be a lazy iterator.
   */
  snapshot<T>(read: (reader: this) => T): T {
    this.db.exec("BEGIN");
    try {
      return read(this);
    } finally {
      this.db.exec("COMMIT");
    }
  }

  close(): void {
    this.db.close();
  }
}

/** Every study of the file (or only those named in `studies`), each with its events, as one snapshot. */
export function readStudyLog(path: string, studies?: readonly string[]): LoggedStudy[] {
  const reader = new StudyLogReader(path);
  try {
    return reader.snapshot((r) =>
      r
        .studies()
        .filter((s) => studies === undefined || studies.includes(s.study))
        .map((s) => ({ ...s, events: [...r.events(s.study)] })),
    );
  } finally {
    reader.close();
  }
}

/** The studies of a connection's database, in creation order (SqliteStore reads its own file with it too). */
export function readStudies(db: Database.Database): StoredStudy[] {
  const rows = db.prepare("SELECT study, config, created_at FROM studies ORDER BY rowid").all() as StudyRow[];
  return rows.map((r) => ({ study: r.study, config: JSON.parse(r.config) as StudyConfig, created_at: r.created_at }));
}

/** A study's events in arrival order, read lazily through a connection. */
export function* readEvents(db: Database.Database, study: string): IterableIterator<StoredEvent> {
  const rows = db
    .prepare("SELECT study, trial, kind, step, body, format, verdict FROM events WHERE study = ? ORDER BY seq")
    .iterate(study) as IterableIterator<EventRow>;
  for (const r of rows) yield storedEvent(r);
}

function storedEvent(r: EventRow): StoredEvent {
  if (r.kind === "payload") {
    return { study: r.study, trial: r.trial, kind: "payload", step: r.step ?? 0, body: r.body, format: r.format, verdict: r.verdict ?? "null" };
  }
  return { study: r.study, trial: r.trial, kind: "end", state: (JSON.parse(r.body) as { state: TrialEndState }).state };
}
