/**
 * The tables of a service's database and the commit of a batch of rows, shared by the main
 * thread (small batches, committed inline) and the writer thread (src/store/writer-thread.ts).
 */
import type Database from "better-sqlite3";
import type { BodyFormat } from "./stored-types.js";

export const SCHEMA = `
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

/** One events row, in INSERT_EVENT's column order. */
export type EventValues = [string, string, "payload" | "end", number | null, string, BodyFormat, string | null];

/** A row to commit: "e" + an events row, or "s" + a studies row (study, config JSON, created_at). */
export type WriterRow = ["e", ...EventValues] | ["s", string, string, string];

/**
 * The commit of a batch on a connection: one transaction that stores every row or none.
 * An event whose key (study, trial, step; or study, trial for an end) is already taken
 * by the same row is a re-delivery and passes; by another row, it is a conflict (another
 * writer on the file) and fails the batch, so that nothing is acknowledged that is not
 * what the file holds.
 */
export function createCommit(db: Database.Database): (rows: WriterRow[]) => void {
  const insertEvent = db.prepare(INSERT_EVENT);
  const insertStudy = db.prepare(INSERT_STUDY);
  const storedEvent = db.prepare(STORED_EVENT);
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
