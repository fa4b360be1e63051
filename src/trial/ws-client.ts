/**
 * A small JSON-RPC 2.0 client of `bttackler serve` over WebSocket (docs/protocol.md),
 * for the trial SDK's standalone host (standalone-host.ts), its only user. The service's own
 * sockets (the server side) are in src/service/.
 *
 * - Lazy: it connects at the first call, and again at the next call after the
 *   connection was lost.
 * - Bounded: every call settles within its timeout, connecting included.
 * - Backs off: after a failed connection, calls fail at once for 0.5 s, then 1 s, 2 s, …
 *   up to 30 s (reset by a successful connection), so that a service that is down does
 *   not cost every epoch a timeout. `force` calls (the trial's end) always try.
 * - Does not keep the process alive while idle: the socket is unreferenced between calls.
 * - The token, when there is one, goes in the `Authorization: Bearer` header.
 *
 * Every failure rejects with an RpcFailure (timeouts, refused connections, closed
 * connections, error replies alike); the standalone host turns those into fail-open
 * answers.
 */
import type { Socket } from "node:net";
import WebSocket from "ws";
import { isPlainObject, parseJson } from "../schema/json.js";

export class RpcFailure extends Error {
  override readonly name = "RpcFailure";
  constructor(
    message: string,
    /** The JSON-RPC error code when the service answered with an error. */
    readonly code?: number,
  ) {
    super(message);
  }
}

interface Pending {
  resolve: (result: unknown) => void;
  reject: (err: RpcFailure) => void;
}

export interface RpcClientOptions {
  token?: string | undefined;
  timeoutMs: number;
}

const BACKOFF_INITIAL_MS = 500;
const BACKOFF_MAX_MS = 30_000;

export class TrialRpcClient {
  private ws: WebSocket | undefined;
  private socket: Socket | undefined;
  private opening: Promise<WebSocket> | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private backoffMs = BACKOFF_INITIAL_MS;
  private retryAt = 0;
  private closed = false;

  constructor(
    readonly url: string,
    private readonly options: RpcClientOptions,
  ) {}

  /** Calls `method`; resolves with its result, or rejects with an RpcFailure within the timeout. */
  call(method: string, params: unknown, force = false): Promise<unknown> {
    if (this.closed) return Promise.reject(new RpcFailure("client closed"));
    if (!force && this.ws === undefined && this.opening === undefined && Date.now() < this.retryAt) {
      return Promise.reject(new RpcFailure(`not connected (next attempt in ${this.retryAt - Date.now()} ms)`));
    }
    const id = this.nextId++;
    return new Promise<unknown>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        this.idle();
        reject(new RpcFailure(`no answer to ${method} within ${this.options.timeoutMs} ms`));
      }, this.options.timeoutMs);
      this.pending.set(id, {
        resolve: (result) => {
          clearTimeout(timer);
          resolve(result);
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      });
      this.socket?.ref();
      this.open().then(
        (ws) => {
          if (!this.pending.has(id)) return; // timed out while connecting
          // a connection the service is closing (e.g. 4401, a wrong token): its "close" fails the call with the reason
          if (ws.readyState !== WebSocket.OPEN) return;
          ws.send(JSON.stringify({ jsonrpc: "2.0", id, method, params }), (err) => {
            if (err && ws.readyState === WebSocket.OPEN) this.settle(id, new RpcFailure(`could not send ${method}: ${err.message}`));
          });
        },
        (err: RpcFailure) => this.settle(id, err),
      );
    });
  }

  /** Closes the connection; later calls fail at once. */
  close(): void {
    this.closed = true;
    this.failAll(new RpcFailure("client closed"));
    const ws = this.ws;
    this.ws = undefined;
    if (ws && ws.readyState === WebSocket.OPEN) ws.close(1000);
    else ws?.terminate();
  }

  private open(): Promise<WebSocket> {
    if (this.ws !== undefined && this.ws.readyState === WebSocket.OPEN) return Promise.resolve(this.ws);
    if (this.opening !== undefined) return this.opening;
    const headers: Record<string, string> = this.options.token ? { authorization: `Bearer ${this.options.token}` } : {};
    this.opening = new Promise<WebSocket>((resolve, reject) => {
      let ws: WebSocket;
      try {
        ws = new WebSocket(this.url, { headers, handshakeTimeout: this.options.timeoutMs });
      } catch (err) {
        this.opening = undefined;
        this.noteFailure();
        reject(new RpcFailure(`cannot connect to ${this.url}: ${(err as Error).message}`));
        return;
      }
      let opened = false;
      ws.on("upgrade", (res) => {
        this.socket = res.socket as Socket;
      });
      ws.once("open", () => {
        opened = true;
        this.opening = undefined;
        this.ws = ws;
        this.backoffMs = BACKOFF_INITIAL_MS;
        this.retryAt = 0;
        if (this.closed) ws.close(1000);
        resolve(ws);
      });
      ws.on("message", (data) => this.onMessage(data.toString()));
      ws.on("error", (err) => {
        if (opened) return; // "close" follows and fails what is pending
        this.opening = undefined;
        this.noteFailure();
        reject(new RpcFailure(`cannot connect to ${this.url}: ${err.message}`));
      });
      ws.on("close", (code, reason) => {
        if (this.ws === ws) this.ws = undefined;
        this.socket = undefined;
        if (!opened) {
          this.opening = undefined;
          reject(new RpcFailure(`cannot connect to ${this.url}: closed (${code})`));
          return;
        }
        const why = code === 4401 ? `unauthorized (${reason.toString() || "missing or wrong token"})` : `connection closed (${code}${reason.length ? ` ${reason.toString()}` : ""})`;
        this.failAll(new RpcFailure(why));
      });
    });
    return this.opening;
  }

  private noteFailure(): void {
    this.retryAt = Date.now() + this.backoffMs;
    this.backoffMs = Math.min(this.backoffMs * 2, BACKOFF_MAX_MS);
  }

  /**
   * A frame from the service. A frame that is not JSON, and an error reply whose id is null
   * (the service could not read a request's id), belong to no call in particular: they fail
   * every call waiting on this connection with what the service said, rather than leaving
   * the callers to time out.
   */
  private onMessage(text: string): void {
    let message: unknown;
    try {
      message = parseJson(text);
    } catch (err) {
      this.failAll(new RpcFailure(`the service sent a frame that is not JSON (${(err as Error).message}): ${text.slice(0, 120)}`));
      this.idle();
      return;
    }
    for (const reply of Array.isArray(message) ? message : [message]) {
      if (!isPlainObject(reply)) continue;
      const failure = isPlainObject(reply.error) ? errorFailure(reply.error) : undefined;
      if (typeof reply.id === "number") {
        this.settle(reply.id, failure, reply.result);
      } else if ((reply.id === null || !("id" in reply)) && failure !== undefined) {
        this.failAll(failure);
        this.idle();
      }
    }
  }

  private settle(id: number, err: RpcFailure | undefined, result?: unknown): void {
    const pending = this.pending.get(id);
    if (pending === undefined) return;
    this.pending.delete(id);
    this.idle();
    if (err) pending.reject(err);
    else pending.resolve(result);
  }

  private failAll(err: RpcFailure): void {
    const all = [...this.pending.values()];
    this.pending.clear();
    for (const pending of all) pending.reject(err);
  }

  /** Between calls the connection must not keep the process alive. */
  private idle(): void {
    if (this.pending.size === 0) this.socket?.unref();
  }
}

/** The RpcFailure of an error reply's `error` member. */
function errorFailure(error: Record<string, unknown>): RpcFailure {
  const code = typeof error.code === "number" ? error.code : undefined;
  return new RpcFailure(`the service answered error ${String(code)}: ${String(error.message)}`, code);
}
