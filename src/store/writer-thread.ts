/**
 * The database writer thread of SqliteStore: commits the batches it is sent, each as one
 * transaction (createCommit), and answers "done" or "failed" with the batch's id.
 * Started by SqliteStore through startThread with `workerData: { path }`.
 */
import { parentPort, workerData } from "node:worker_threads";
import Database from "better-sqlite3";
import { createCommit, SCHEMA, type WriterRow } from "./commit.js";

/** What SqliteStore sends the writer. */
export type WriterMessage = { type: "commit"; id: number; rows: WriterRow[] } | { type: "close" };

/** What the writer answers. */
export type WriterReply = { type: "done"; id: number } | { type: "failed"; id: number; error: string } | { type: "closed" };

export interface WriterData {
  path: string;
}

const message = (err: unknown): string => String((err instanceof Error ? err.message : undefined) || err);

function open(path: string): { db: Database.Database; commit: (rows: WriterRow[]) => void } {
  try {
    const db = new Database(path);
    db.pragma("busy_timeout = 10000");
    db.pragma("synchronous = NORMAL");
    db.pragma("wal_autocheckpoint = 0");
    db.exec(SCHEMA); // an in-memory database is private to its connection: this one needs the tables too
    return { db, commit: createCommit(db) };
  } catch (err) {
    // a SqliteError reaches the main thread as a bare { code }, without its message: throw a plain Error
    throw new Error(message(err));
  }
}

const port = parentPort;
if (port === null) throw new Error("writer-thread.ts runs as a worker thread of SqliteStore");
const { db, commit } = open((workerData as WriterData).path);
port.on("message", (m: WriterMessage) => {
  if (m.type === "commit") {
    let reply: WriterReply;
    try {
      commit(m.rows);
      reply = { type: "done", id: m.id };
    } catch (err) {
      reply = { type: "failed", id: m.id, error: message(err) };
    }
    port.postMessage(reply);
  } else if (m.type === "close") {
    db.close();
    port.postMessage({ type: "closed" } satisfies WriterReply);
    port.close();
  }
});
