/**
 * The real service as a child process, for the fuzzer and the fault tests:
 * `node dist/cli/main.js serve --port P --db FILE`, its address read from the
 * start-up log line on standard error, its RSS read from /proc, its exit watched.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

export const CLI = fileURLToPath(new URL("../../dist/cli/main.js", import.meta.url));

export interface ServiceExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ServiceProcess {
  child: ChildProcess;
  pid: number;
  url: string;
  port: number;
  /** Resolves when the process exits, for whatever reason. */
  exited: Promise<ServiceExit>;
  /** The last lines it wrote on standard error (for failure messages). */
  logTail(): string[];
  /** The lines it logged at level "error" (the first 100). */
  errorLines(): string[];
}

export interface StartOptions {
  db: string;
  /** 0 = any free port. */
  port?: number;
  extraArgs?: string[];
  /** Node flags for the service process (e.g. --cpu-prof). */
  nodeArgs?: string[];
}

const LOG_LINES_KEPT = 50;

export function startService(options: StartOptions): Promise<ServiceProcess> {
  const args = [...(options.nodeArgs ?? []), CLI, "serve", "--port", String(options.port ?? 0), "--db", options.db, ...(options.extraArgs ?? [])];
  const child = spawn(process.execPath, args, { stdio: ["ignore", "ignore", "pipe"] });
  const lines: string[] = [];
  const errors: string[] = [];
  const exited = new Promise<ServiceExit>((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
  return new Promise((resolve, reject) => {
    let partial = "";
    child.stderr?.on("data", (chunk: Buffer) => {
      partial += chunk.toString("utf8");
      let nl: number;
      while ((nl = partial.indexOf("\n")) >= 0) {
        const line = partial.slice(0, nl);
        partial = partial.slice(nl + 1);
        lines.push(line);
        if (lines.length > LOG_LINES_KEPT) lines.shift();
        if (line.includes('"level":"error"') && errors.length < 100) errors.push(line);
        const address = /"address":"(ws:\/\/[^"]+)"/.exec(line)?.[1];
        if (address !== undefined) {
          resolve({ child, pid: child.pid as number, url: address, port: Number(new URL(address).port), exited, logTail: () => [...lines], errorLines: () => [...errors] });
        }
      }
    });
    void exited.then((exit) => reject(new Error(`the service exited before listening (${describeExit(exit)}): ${lines.join("\n")}`)));
  });
}

export function describeExit(exit: ServiceExit): string {
  return exit.signal !== null ? `signal ${exit.signal}` : `code ${String(exit.code)}`;
}

/** Resident set size of a process in MiB, from /proc/PID/status. */
export function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kib = Number(/VmRSS:\s+(\d+)\s+kB/.exec(status)?.[1]);
  return kib / 1024;
}

/** SIGTERM, then SIGKILL if it has not exited within `graceMs`. */
export async function stopService(service: ServiceProcess, graceMs = 15_000): Promise<ServiceExit> {
  if (service.child.exitCode !== null || service.child.signalCode !== null) return service.exited;
  service.child.kill("SIGTERM");
  const killer = setTimeout(() => service.child.kill("SIGKILL"), graceMs);
  const exit = await service.exited;
  clearTimeout(killer);
  return exit;
}
