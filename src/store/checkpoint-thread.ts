/**
 * The checkpoint thread of SqliteStore: copies the WAL into the database every `intervalMs`
 * (PASSIVE, so it never blocks the writer), and once more (TRUNCATE) when told to close.
 * Started by SqliteStore through startThread with `workerData: { path, intervalMs }`.
 */
import { parentPort, workerData } from "node:worker_threads";
import Database from "better-sqlite3";

export interface CheckpointData {
  path: string;
  intervalMs: number;
}

const port = parentPort;
if (port === null) throw new Error("checkpoint-thread.ts runs as a worker thread of SqliteStore");
const { path, intervalMs } = workerData as CheckpointData;
const db = new Database(path);
db.pragma("busy_timeout = 10000");
const timer = setInterval(() => {
  try {
    db.pragma("wal_checkpoint(PASSIVE)");
  } catch {
    /* busy: try again at the next tick */
  }
}, intervalMs);
port.on("message", (m: { type: string }) => {
  if (m.type === "close") {
    clearInterval(timer);
    try {
      db.pragma("wal_checkpoint(TRUNCATE)");
    } catch {
      /* leave the WAL for the next start */
    }
    db.close();
    port.close();
  }
});
