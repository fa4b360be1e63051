/** Looking at a store's SQLite file from outside, as another process would: shared by the store and registry tests. */
import Database from "better-sqlite3";

/** Counts events rows through a separate read-only connection. */
export function countRows(path: string, where = "1 = 1"): number {
  const db = new Database(path, { readonly: true });
  try {
    return (db.prepare(`SELECT count(*) AS n FROM events WHERE ${where}`).get() as { n: number }).n;
  } finally {
    db.close();
  }
}

/** Runs SQL on the file through another connection (schema faults, triggers that cause a real transient fault). */
export function exec(path: string, sql: string): void {
  const db = new Database(path);
  try {
    db.exec(sql);
  } finally {
    db.close();
  }
}

/** The largest seq of a trial's rows: where its last row landed in the log. */
export function seqOf(path: string, trial: string): number {
  const db = new Database(path, { readonly: true });
  try {
    return (db.prepare("SELECT max(seq) AS seq FROM events WHERE trial = ?").get(trial) as { seq: number }).seq;
  } finally {
    db.close();
  }
}
