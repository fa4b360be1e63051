/** `bttackler serve`: the diagnosis service over WebSocket (default) or stdio. */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import type { Log } from "../protocol/log.js";
import { createLogger, type LogLevel } from "../service/logger.js";
import {
  DEFAULT_MAX_PAYLOAD,
  DEFAULT_PORT,
  MIN_REMOTE_TOKEN_LENGTH,
  ServiceStartError,
  runStdioService,
  startWsService,
} from "../service/service.js";
import { tuneGarbageCollection } from "./gc-tuning.js";
import { npmLauncherChain, watchLauncher } from "./launcher-watch.js";
import { UsageError } from "./usage.js";

export const SERVE_HELP = `Usage: bttackler serve [--host H] [--port P] [--db PATH] [--token-file FILE] [--max-payload BYTES] [--stdio]

Runs the diagnosis service: JSON-RPC 2.0 over WebSocket (ws://H:P), or over standard
input/output with --stdio (one JSON request per line in, one reply per line out).
Methods and errors: docs/protocol.md.

Options:
  --host H              address to listen on (default 127.0.0.1); any non-loopback
                        address needs a token
  --port P              port (default ${DEFAULT_PORT}; 0 = any free port, printed at start-up)
  --db PATH             SQLite database (default bttackler.db; ":memory:" keeps nothing);
                        one service per database: held through PATH.lock while running
  --token-file FILE     read the token clients must present (Authorization: Bearer T,
                        or ?token=T) from FILE (one line); default: the BTTACKLER_TOKEN
                        environment variable. Off loopback it needs at least
                        ${MIN_REMOTE_TOKEN_LENGTH} characters: openssl rand -hex 32 > FILE
  --token T             the token itself (visible to other users in ps: prefer the above)
  --max-payload BYTES   largest accepted frame (default ${DEFAULT_MAX_PAYLOAD})
  --stdio               serve on standard input/output instead of WebSocket
  --log-level LEVEL     debug, info (default), warn or error
  --exit-with-parent    stop (gracefully) when the process that started the service
                        goes away, e.g. a host killed with SIGKILL that cannot stop it;
                        started by npm (npx, npm exec, npm run) it stops with npm anyway
  -h, --help            show this help

Logs are JSON lines on standard error: a start-up line with address, db and version,
one line per stopped trial with its reason. SIGINT/SIGTERM stop the service after
every acknowledged report is committed.
`;

function positiveInt(name: string, raw: string, min: number): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) throw new UsageError(`${name} must be an integer >= ${min}, got ${JSON.stringify(raw)}`);
  return n;
}

export async function serveCommand(argv: string[], version: string): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      host: { type: "string", default: "127.0.0.1" },
      port: { type: "string", default: String(DEFAULT_PORT) },
      db: { type: "string", default: "bttackler.db" },
      token: { type: "string" },
      "token-file": { type: "string" },
      "max-payload": { type: "string", default: String(DEFAULT_MAX_PAYLOAD) },
      stdio: { type: "boolean", default: false },
      "log-level": { type: "string", default: "info" },
      "exit-with-parent": { type: "boolean", default: false },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    process.stdout.write(SERVE_HELP);
    return 0;
  }
  if (positionals.length > 0) throw new UsageError(`serve takes no positional arguments, got ${positionals.join(" ")}`);
  const level = values["log-level"];
  if (!["debug", "info", "warn", "error"].includes(level)) throw new UsageError(`--log-level must be debug, info, warn or error, got ${level}`);
  const log = createLogger(process.stderr, level as LogLevel);
  tuneGarbageCollection();
  const maxPayload = positiveInt("--max-payload", values["max-payload"], 64);
  const port = positiveInt("--port", values.port, 0);
  if (port > 65535) throw new UsageError(`--port must be at most 65535, got ${port}`);
  const token = resolveToken(values.token, values["token-file"], log);
  const common = { db: values.db, version, log, maxPayload };

  if (values.stdio) {
    try {
      await runStdioService(common, process.stdin, process.stdout, () => log.info("bttackler serve started", { transport: "stdio", db: values.db, version }));
    } catch (err) {
      if (err instanceof ServiceStartError) throw new UsageError(err.message);
      throw err;
    }
    log.info("bttackler serve stopped", { reason: "end of input" });
    return 0;
  }

  let service;
  try {
    service = await startWsService({ ...common, host: values.host, port, token });
  } catch (err) {
    if (err instanceof ServiceStartError) throw new UsageError(err.message);
    throw err;
  }
  // the handlers go in before the start-up line: a parent may signal as soon as it reads it
  const stopped = waitForSignal(service.close, log);
  watchStarter(values["exit-with-parent"], log);
  log.info("bttackler serve listening", { address: service.url, db: values.db, version, auth: token ? "token" : "none" });
  return stopped;
}

/**
 * The token: --token, else the first line of --token-file, else BTTACKLER_TOKEN (undefined when none).
 * A token on the command line is visible to every user of the machine (ps): a warning says so.
 */
function resolveToken(inline: string | undefined, file: string | undefined, log: Log): string | undefined {
  if (inline !== undefined && file !== undefined) throw new UsageError("give --token or --token-file, not both");
  if (inline !== undefined) {
    log.warn("--token is visible to other users in the process list; prefer --token-file FILE or BTTACKLER_TOKEN");
    return checkToken(inline, "--token");
  }
  if (file !== undefined) {
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch (err) {
      throw new UsageError(`--token-file: cannot read ${file}: ${(err as Error).message}`);
    }
    return checkToken(text.replace(/\r?\n$/, ""), `--token-file ${file}`);
  }
  return process.env.BTTACKLER_TOKEN ? checkToken(process.env.BTTACKLER_TOKEN, "BTTACKLER_TOKEN") : undefined;
}

/** A token as clients can send it in a header: not empty, no whitespace or control characters (its value is never shown). */
function checkToken(token: string, source: string): string {
  if (token === "") throw new UsageError(`${source}: the token is empty`);
  if (/[\s\x00-\x1f\x7f]/.test(token)) throw new UsageError(`${source}: the token must not contain whitespace or control characters`);
  return token;
}

/**
 * Stops the service (as on SIGTERM) when the process that started it is gone: the parent with
 * --exit-with-parent, and by default, when npm started it (npx, npm exec, npm run), the chain
 * up to that npm process (src/cli/launcher-watch.ts says why).
 */
function watchStarter(exitWithParent: boolean, log: Log): void {
  const npm = process.env.npm_command === undefined ? [] : npmLauncherChain(process.ppid);
  if (!exitWithParent && npm.length === 0) return;
  const chain = npm.length > 0 ? npm : [process.ppid];
  watchLauncher(chain, (pid) => {
    log.warn("the process that started the service is gone; stopping", { pid, watched: chain });
    process.kill(process.pid, "SIGTERM");
  });
}

function waitForSignal(close: () => Promise<void>, log: Log): Promise<number> {
  return new Promise((resolve) => {
    let stopping = false;
    const stop = (signal: NodeJS.Signals): void => {
      if (stopping) return;
      stopping = true;
      log.info("shutting down", { signal });
      close().then(
        () => {
          log.info("bttackler serve stopped", { signal });
          resolve(0);
        },
        (err: unknown) => {
          log.error("shutdown failed", { error: String(err) });
          resolve(1);
        },
      );
    };
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
  });
}
