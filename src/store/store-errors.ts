/** Why a service's database cannot be opened for writing. */

/** Who holds a database's lock, as the holder wrote it. */
export interface LockHolder {
  pid: number;
  host: string;
  since: string;
}

/** The database cannot be used by a service: missing folder, not a database, a foreign one, held by another service. */
export class StoreOpenError extends Error {
  override readonly name: string = "StoreOpenError";
}

/** Another service (process) holds the database. */
export class DatabaseInUseError extends StoreOpenError {
  override readonly name = "DatabaseInUseError";

  constructor(
    readonly dbPath: string,
    readonly holder: LockHolder | undefined,
  ) {
    const who = holder === undefined ? "another process" : `another bttackler service (pid ${holder.pid} on ${holder.host}, since ${holder.since})`;
    super(`${dbPath} is in use by ${who}; a database serves one service at a time: stop that one or choose another --db`);
  }
}
