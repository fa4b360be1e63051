/**
 * One service per database: a lock that a service holds for as long as it has the
 * database open, and that dies with its process.
 *
 * The lock is a small SQLite file beside the database (`<db>.lock`). The holder keeps a
 * write transaction open on it (`BEGIN IMMEDIATE`, SQLite's RESERVED lock, an fcntl lock
 * that the operating system drops when the process ends, `kill -9` included). A second
 * service finds the transaction held, reads who holds it (pid, host, since when: written
 * by the holder before it took the lock for good) and refuses to start. The file itself
 * may stay behind after a service stops; only the held transaction counts.
 *
 * Taking the lock is: begin, write the holder's row, commit, begin again. If another
 * process slips in between the commit and the second begin, that process holds the lock
 * and this one refuses: two services never both hold it, and neither waits.
 */
import { hostname } from "node:os";
import Database from "better-sqlite3";
import { DatabaseInUseError, type LockHolder, StoreOpenError } from "./store-errors.js";

const HOLDER_TABLE = `CREATE TABLE IF NOT EXISTS holder (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  pid INTEGER NOT NULL,
  host TEXT NOT NULL,
  since TEXT NOT NULL
)`;

/** The lock file of a database file. */
export function lockPathOf(dbPath: string): string {
  return `${dbPath}.lock`;
}

export class DatabaseLock {
  private constructor(
    private readonly db: Database.Database,
    readonly path: string,
  ) {}

  /**
   * Takes the lock of `dbPath` for this process; throws DatabaseInUseError naming the
   * holder when another connection holds it, StoreOpenError when the lock file cannot be
   * made (a missing folder, no permission).
   */
  static acquire(dbPath: string, now: Date = new Date()): DatabaseLock {
    const path = lockPathOf(dbPath);
    let db: Database.Database;
    try {
      db = new Database(path, { timeout: 0 });
    } catch (err) {
      throw new StoreOpenError(`cannot open ${dbPath}: ${(err as Error).message}`);
    }
    try {
      db.exec(HOLDER_TABLE);
      if (!tryBegin(db)) throw inUse(dbPath, db);
      db.prepare("INSERT OR REPLACE INTO holder (id, pid, host, since) VALUES (1, ?, ?, ?)").run(process.pid, hostname(), now.toISOString());
      db.pragma("busy_timeout = 2000"); // a refused service may be reading the holder's row just now
      db.exec("COMMIT");
      db.pragma("busy_timeout = 0");
      if (!tryBegin(db)) throw inUse(dbPath, db);
    } catch (err) {
      db.close();
      if (err instanceof StoreOpenError) throw err;
      throw new StoreOpenError(`cannot lock ${dbPath} (lock file ${path}): ${(err as Error).message}`);
    }
    return new DatabaseLock(db, path);
  }

  /** Lets go of the lock (the process ending does the same). */
  release(): void {
    if (!this.db.open) return;
    if (this.db.inTransaction) this.db.exec("ROLLBACK");
    this.db.close();
  }
}

/** Begins the held transaction; false when another connection holds it. */
function tryBegin(db: Database.Database): boolean {
  try {
    db.exec("BEGIN IMMEDIATE");
    return true;
  } catch (err) {
    if ((err as { code?: string }).code === "SQLITE_BUSY") return false;
    throw err;
  }
}

function inUse(dbPath: string, db: Database.Database): DatabaseInUseError {
  let holder: LockHolder | undefined;
  try {
    db.pragma("busy_timeout = 1000");
    holder = db.prepare("SELECT pid, host, since FROM holder WHERE id = 1").get() as LockHolder | undefined;
  } catch {
    holder = undefined; // the holder is committing its row right now: say what we know
  }
  return new DatabaseInUseError(dbPath, holder);
}
