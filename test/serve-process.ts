/**
 * The one way the tests, the fuzzer, the fault runs and the benchmarks start the service:
 * `node [NODE_ARGS] dist/cli/main.js serve --port P ARGS`, its standard error read line by line,
 * resolved once its start-up line (`{"msg": "bttackler serve listening", "address": "ws://…"}`)
 * gives the address. The Python tests start it with bttackler.local_service.LocalService.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

export const CLI = fileURLToPath(new URL("../dist/cli/main.js", import.meta.url));

export interface ServiceExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ServiceProcess {
  child: ChildProcess;
  pid: number;
  url: string;
  port: number;
  /** Every line it wrote on standard error so far, the start-up line included (the last `keepLines` with that option). */
  lines: string[];
  /** Resolves when the process exits, for whatever reason. */
  exited: Promise<ServiceExit>;
  /** The last lines it wrote on standard error (for failure messages). */
  logTail(): string[];
  /** The lines it logged at level "error" (the first 100). */
  errorLines(): string[];
}

export interface StartOptions {
  /** Arguments after `serve --port P`, e.g. ["--db", file]. */
  args?: string[];
  /** 0 (the default) = any free port. */
  port?: number;
  /** Node flags for the service process (e.g. --cpu-prof). */
  nodeArgs?: string[];
  /** Added to this process's environment. */
  env?: NodeJS.ProcessEnv;
  /** Where its standard output goes: ignored (the default) or a file descriptor. */
  stdout?: "ignore" | number;
  /** Keep only the last N lines of standard error (default: all). */
  keepLines?: number;
  /** Called with the child at once, before it listens (e.g. to kill it whatever happens). */
  onSpawn?: (child: ChildProcess) => void;
  /** Instead of `dist/cli/main.js serve --port P ARGS`: another program (after nodeArgs) that prints such a start-up line. */
  program?: string[];
  /** Called with every line it writes on standard error, as it comes (e.g. to wait for one). */
  onLine?: (line: string) => void;
}

const LOG_TAIL = 50;

/** The address a start-up line announces, or undefined. */
export function listeningAddress(line: string): string | undefined {
  let entry: unknown;
  try {
    entry = JSON.parse(line);
  } catch {
    return undefined;
  }
  const address = (entry as { address?: unknown } | null)?.address;
  return typeof address === "string" && address.startsWith("ws://") ? address : undefined;
}

/** Calls `onLine` with each whole line a child's output stream writes (UTF-8, without the newline). */
export function onLines(stream: NodeJS.ReadableStream | null | undefined, onLine: (line: string) => void): void {
  let partial = "";
  stream?.on("data", (chunk: Buffer | string) => {
    partial += typeof chunk === "string" ? chunk : chunk.toString("utf8");
    for (let nl = partial.indexOf("\n"); nl >= 0; nl = partial.indexOf("\n")) {
      const line = partial.slice(0, nl);
      partial = partial.slice(nl + 1);
      onLine(line);
    }
  });
}

/** Starts the service; rejects, with what it said, when it exits before listening. */
export function startService(options: StartOptions = {}): Promise<ServiceProcess> {
  const program = options.program ?? [CLI, "serve", "--port", String(options.port ?? 0), ...(options.args ?? [])];
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), ...program], {
    stdio: ["ignore", options.stdout ?? "ignore", "pipe"],
    env: { ...process.env, ...options.env },
  });
  options.onSpawn?.(child);
  const keep = options.keepLines ?? Infinity;
  const lines: string[] = [];
  const errors: string[] = [];
  const exited = new Promise<ServiceExit>((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
  return new Promise((resolve, reject) => {
    let listening = false;
    onLines(child.stderr, (line) => {
      lines.push(line);
      if (lines.length > keep) lines.shift();
      options.onLine?.(line);
      if (line.includes('"level":"error"') && errors.length < 100) errors.push(line);
      const address = listening ? undefined : listeningAddress(line);
      if (address !== undefined) {
        listening = true;
        const tail = (): string[] => lines.slice(-LOG_TAIL);
        resolve({ child, pid: child.pid as number, url: address, port: Number(new URL(address).port), lines, exited, logTail: tail, errorLines: () => [...errors] });
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
export async function stopService(service: Pick<ServiceProcess, "child" | "exited">, graceMs = 15_000): Promise<ServiceExit> {
  if (service.child.exitCode !== null || service.child.signalCode !== null) return service.exited;
  service.child.kill("SIGTERM");
  const killer = setTimeout(() => service.child.kill("SIGKILL"), graceMs);
  const exit = await service.exited;
  clearTimeout(killer);
  return exit;
}
