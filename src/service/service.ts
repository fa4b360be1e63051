/**
 * A running diagnosis service: store + studies + JSON-RPC handler, reachable over
 * WebSocket or stdio. `startService` is what `bttackler serve` and the tests call.
 */
import { constants as perfConstants, monitorEventLoopDelay, PerformanceObserver, type PerformanceEntry } from "node:perf_hooks";
import type { Readable, Writable } from "node:stream";
import type { Log } from "../protocol/log.js";
import { RpcHandler } from "../protocol/rpc-server.js";
import { StudyRegistry } from "../protocol/study-registry.js";
import { SqliteStore } from "../store/sqlite-store.js";
import { StoreOpenError } from "../store/store-errors.js";
import { runStdioTransport } from "./stdio-transport.js";
import { startWsTransport, type WsTransport } from "./ws-transport.js";

export const DEFAULT_PORT = 8765;
export const DEFAULT_MAX_PAYLOAD = 1024 * 1024;

export interface ServiceOptions {
  /** SQLite file, or ":memory:". */
  db: string;
  version: string;
  log: Log;
  maxPayload?: number;
}

export interface WsServiceOptions extends ServiceOptions {
  host?: string;
  port?: number;
  token?: string | undefined;
}

/** The shortest token accepted on a non-loopback address (32 hex digits from `openssl rand -hex 16` and up). */
export const MIN_REMOTE_TOKEN_LENGTH = 32;

export class ServiceStartError extends Error {
  override readonly name = "ServiceStartError";
}

export function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

interface PauseTally {
  count: number;
  total_ms: number;
  max_ms: number;
}

/** Garbage-collection pauses of this thread, young generation (scavenges) apart from the rest. */
const noPauses = (): PauseTally => ({ count: 0, total_ms: 0, max_ms: 0 });

class GcPauses {
  private young = noPauses();
  private other = noPauses();
  private readonly observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) this.add(entry);
  });

  constructor() {
    this.observer.observe({ entryTypes: ["gc"] });
  }

  private add(entry: PerformanceEntry): void {
    const kind = ((entry as PerformanceEntry & { detail?: { kind?: number } }).detail)?.kind;
    const tally = kind === perfConstants.NODE_PERFORMANCE_GC_MINOR ? this.young : this.other;
    tally.count++;
    tally.total_ms += entry.duration;
    tally.max_ms = Math.max(tally.max_ms, entry.duration);
  }

  /** The pauses since the previous call. */
  take(): { young: PauseTally; other: PauseTally } {
    const round = (t: PauseTally): PauseTally => ({ count: t.count, total_ms: Number(t.total_ms.toFixed(3)), max_ms: Number(t.max_ms.toFixed(3)) });
    const figures = { young: round(this.young), other: round(this.other) };
    this.young = noPauses();
    this.other = noPauses();
    return figures;
  }
}

/**
 * Event-loop delay and garbage-collection pauses since the previous call, and memory:
 * what shows whether slow answers come from the service's own thread.
 */
function runtimeFigures(): () => Record<string, unknown> {
  const delay = monitorEventLoopDelay({ resolution: 1 });
  delay.enable();
  const gc = new GcPauses();
  const ms = (ns: number): number => Number((ns / 1e6).toFixed(3));
  // One set of figures per turn of the event loop: reading and resetting the delay histogram
  // costs ~0.1 ms, which a batch of 1,000 health calls would otherwise pay 1,000 times.
  let current: Record<string, unknown> | undefined;
  return () => {
    if (current === undefined) {
      current = {
        event_loop_delay_ms: { p50: ms(delay.percentile(50)), p99: ms(delay.percentile(99)), max: ms(delay.max) },
        gc_pauses: gc.take(),
        rss_mb: Math.round(process.memoryUsage.rss() / 2 ** 20),
        heap_used_mb: Math.round(process.memoryUsage().heapUsed / 2 ** 20),
      };
      delay.reset();
      setImmediate(() => {
        current = undefined;
      });
    }
    return current;
  };
}

function core(options: ServiceOptions): { store: SqliteStore; handler: RpcHandler } {
  let store: SqliteStore;
  try {
    store = new SqliteStore(options.db);
  } catch (err) {
    if (err instanceof StoreOpenError) throw new ServiceStartError(`--db: ${err.message}`);
    throw err;
  }
  const registry = new StudyRegistry(store, options.log);
  const info = { version: options.version, db: options.db, startedAt: performance.now(), now: () => performance.now(), runtime: runtimeFigures() };
  const handler = new RpcHandler(registry, info, options.log);
  return { store, handler };
}

export interface RunningService {
  url: string;
  port: number;
  /** Stops accepting, closes the connections, commits every pending write and closes the database. */
  close(): Promise<void>;
}

export async function startWsService(options: WsServiceOptions): Promise<RunningService> {
  const host = options.host ?? "127.0.0.1";
  if (!isLoopback(host) && !options.token) {
    throw new ServiceStartError(
      `refusing to listen on ${host} without a token: pass --token-file FILE or set BTTACKLER_TOKEN (only loopback addresses may go without)`,
    );
  }
  if (!isLoopback(host) && options.token !== undefined && options.token.length < MIN_REMOTE_TOKEN_LENGTH) {
    throw new ServiceStartError(
      `refusing to listen on ${host} with a token of ${options.token.length} characters: off loopback a token needs at least ${MIN_REMOTE_TOKEN_LENGTH} (make one with: openssl rand -hex 32)`,
    );
  }
  const { store, handler } = core(options);
  let transport: WsTransport;
  try {
    transport = await startWsTransport({
      host,
      port: options.port ?? DEFAULT_PORT,
      token: options.token,
      maxPayload: options.maxPayload ?? DEFAULT_MAX_PAYLOAD,
      handler,
      log: options.log,
    });
  } catch (err) {
    await store.close();
    throw new ServiceStartError(`cannot listen on ${host}:${options.port ?? DEFAULT_PORT}: ${(err as Error).message}`);
  }
  return {
    url: transport.url,
    port: transport.port,
    close: async () => {
      await transport.close();
      await store.close();
    },
  };
}

/** Serves one stdio session; `onStarted` runs once the database is open, before the first request is read. */
export async function runStdioService(options: ServiceOptions, input: Readable, output: Writable, onStarted?: () => void): Promise<void> {
  const { store, handler } = core(options);
  onStarted?.();
  try {
    await runStdioTransport(input, output, handler, options.maxPayload ?? DEFAULT_MAX_PAYLOAD, options.log);
  } finally {
    await store.close();
  }
}
