/** Test harness for the service: a real CLI child process or an in-process service, and a real WebSocket JSON-RPC client. */
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll } from "vitest";
import WebSocket from "ws";
import { CLI, startService } from "../serve-process.js";

export { CLI };

const tempDirs: string[] = [];

/** A database path in a fresh temporary folder, removed after the test file. */
export function tempDb(): string {
  const dir = mkdtempSync(join(tmpdir(), "bttackler-svc-"));
  tempDirs.push(dir);
  return join(dir, "service.db");
}

export interface RpcError {
  code: number;
  message: string;
  data?: unknown;
}

export class RpcCallError extends Error {
  constructor(readonly error: RpcError) {
    super(`${error.code}: ${error.message}`);
  }
}

/** A JSON-RPC client over a real WebSocket; replies are matched by id. */
export class RpcClient {
  private nextId = 1;
  private readonly waiting = new Map<number | string, { resolve: (v: unknown) => void; reject: (e: unknown) => void }>();

  private constructor(readonly ws: WebSocket) {
    ws.on("close", (code) => {
      for (const w of this.waiting.values()) w.reject(new Error(`connection closed (${code})`));
      this.waiting.clear();
    });
    ws.on("message", (data) => {
      const msg = JSON.parse(data.toString()) as unknown;
      const replies = Array.isArray(msg) ? msg : [msg];
      for (const r of replies as { id: number | string | null; result?: unknown; error?: RpcError }[]) {
        const w = r.id === null ? undefined : this.waiting.get(r.id);
        if (w === undefined) continue;
        this.waiting.delete(r.id as number);
        if (r.error) w.reject(new RpcCallError(r.error));
        else w.resolve(r.result);
      }
    });
  }

  static connect(url: string, headers: Record<string, string> = {}): Promise<RpcClient> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, { headers });
      ws.once("open", () => resolve(new RpcClient(ws)));
      ws.once("error", reject);
    });
  }

  call<T = Record<string, unknown>>(method: string, params?: unknown): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.ws.send(JSON.stringify({ jsonrpc: "2.0", id, method, ...(params === undefined ? {} : { params }) }));
    });
  }

  /** Sends a raw frame and resolves with the next frame the service sends back, parsed (use with no call in flight). */
  exchange(frame: string | Buffer, binary = false): Promise<unknown> {
    return new Promise((resolve) => {
      this.ws.once("message", (data) => resolve(JSON.parse(data.toString())));
      this.ws.send(frame, { binary });
    });
  }

  close(): void {
    this.ws.close();
  }
}

export async function expectRpcError(promise: Promise<unknown>): Promise<RpcError> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof RpcCallError) return err.error;
    throw err;
  }
  throw new Error("expected an RPC error");
}

export interface ServeProcess {
  child: ChildProcess;
  url: string;
  logs: string[];
  exited: Promise<number | null>;
}

const children = new Set<ChildProcess>();
// A failed test must leave no service running and no folder behind it.
afterAll(() => {
  for (const child of children) child.kill("SIGKILL");
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** Starts `bttackler serve --port 0 ARGS` (test/serve-process.ts), killed after the test file if it is still running. */
export async function serve(args: string[], env: NodeJS.ProcessEnv = {}): Promise<ServeProcess> {
  const onSpawn = (child: ChildProcess): void => {
    children.add(child);
    child.once("exit", () => children.delete(child));
  };
  const service = await startService({ args, env, onSpawn }).catch((err: Error) => {
    throw new Error(`serve: ${err.message}`);
  });
  return { child: service.child, url: service.url, logs: service.lines, exited: service.exited.then((e) => e.code) };
}

/** One `bttackler serve --db <temp file>` for the whole test file, started before its tests and stopped after them (SIGTERM, its exit awaited); the returned function gives it. */
export function servicePerFile(): () => ServeProcess {
  let service: ServeProcess | undefined;
  beforeAll(async () => {
    service = await serve(["--db", tempDb()]);
  });
  afterAll(async () => {
    service?.child.kill("SIGTERM");
    await service?.exited;
  });
  return () => {
    if (service === undefined) throw new Error("the file's service is not started yet (use it inside a test or a hook)");
    return service;
  };
}

/** A healthy-looking 10-layer payload whose loss depends on the trial's quality. */
export function payload(step: number, quality = 1, layers = 10): Record<string, unknown> {
  const loss = 2.3 * Math.exp(-0.25 * quality * step) + 0.05;
  return {
    step,
    max_steps: 20,
    metrics: { train_loss: loss, val_loss: loss * 1.08, train_acc: 1 - loss / 2.4, val_acc: 1 - loss / 2.3 },
    layers: Array.from({ length: layers }, (_, i) => ({
      name: `dense_${i}`,
      grad_abs_mean: 1e-3 * (1 + 0.05 * i),
      grad_zero_frac: 0.05,
      grad_abs_max: 0.05,
      weight_abs_mean: 0.05,
      update_ratio: 0.03,
    })),
    non_finite: false,
    seconds: 1.2,
  };
}
