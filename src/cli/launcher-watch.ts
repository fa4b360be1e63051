/**
 * The service ends with the process that started it. `npx bttackler serve` (and `npm exec`,
 * `npm run`) runs the service as `npm → sh -c → node`: npm does not pass SIGTERM on to the
 * service, and cannot pass on SIGKILL, so killing the npx process would leave the service
 * holding its port and database. When npm started it, the service therefore watches every
 * process from its parent up to that npm process, and stops (as on SIGTERM) when one of them
 * is gone. `--exit-with-parent` watches the parent, for any launcher.
 *
 * Reading ancestors needs /proc (Linux); elsewhere only the parent is watched.
 */
import { readFileSync } from "node:fs";
import { basename } from "node:path";

/** What the watch needs to know of other processes. */
export interface ProcessTable {
  /** The parent of a process, or undefined when it cannot be read. */
  parentOf(pid: number): number | undefined;
  /** A process's command line as its arguments, or undefined when it cannot be read. */
  commandOf(pid: number): string[] | undefined;
}

/** The process table of /proc. */
export const procTable: ProcessTable = {
  parentOf(pid) {
    try {
      // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so read after the last ")"
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      return Number.isInteger(ppid) && ppid > 0 ? ppid : undefined;
    } catch {
      return undefined;
    }
  },
  commandOf(pid) {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter((a) => a !== "");
    } catch {
      return undefined;
    }
  },
};

/** Whether a command line is npm's or npx's (npm renames its process "npm exec ...", so the first word counts too). */
export function isNpmCommand(argv: readonly string[]): boolean {
  const first = basename((argv[0] ?? "").split(" ")[0] ?? "");
  if (first === "npm" || first === "npx") return true;
  return argv.slice(1, 2).some((a) => /(?:^|\/)(?:npm|npx)(?:-cli\.js)?$/.test(a));
}

/**
 * The processes between the service and the npm process that launched it (`sh -c`, then npm),
 * when the parent or the grandparent is npm (`maxDepth`); else none: a service started by a
 * program that npm happens to run further up (a test runner, a host) is that program's affair.
 */
export function npmLauncherChain(parent: number, table: ProcessTable = procTable, maxDepth = 2): number[] {
  const chain: number[] = [];
  let pid: number | undefined = parent;
  while (pid !== undefined && pid > 1 && chain.length < maxDepth) {
    chain.push(pid);
    const command = table.commandOf(pid);
    if (command !== undefined && isNpmCommand(command)) return chain;
    pid = table.parentOf(pid);
  }
  return [];
}

/** Whether a process exists (a process of another user counts). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Calls `gone(pid)` once, when the parent changes (it died: the service was re-parented) or a
 * watched process no longer exists; polled every `intervalMs`. The timer keeps nothing alive.
 */
export function watchLauncher(chain: readonly number[], gone: (pid: number) => void, intervalMs = 500): () => void {
  const parent = process.ppid;
  const timer = setInterval(() => {
    const missing = process.ppid !== parent ? parent : chain.find((pid) => !isAlive(pid));
    if (missing === undefined) return;
    clearInterval(timer);
    gone(missing);
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
