/**
 * JSON-RPC over WebSocket. One text frame = one request or batch; the reply goes
 * back on the same connection. Binary frames get an invalid-request reply; a frame
 * over `maxPayload` closes the connection with 1009 (the ws library's guard, so the
 * frame is never buffered whole).
 *
 * Auth: when a token is set, a client presents it as `Authorization: Bearer <token>`
 * or as the `token` query parameter of the URL; otherwise the connection is closed
 * at once with code 4401 and the reason "unauthorized: missing or wrong token".
 * The token is compared in constant time and never logged.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { WebSocketServer, type WebSocket } from "ws";
import type { Log } from "../protocol/log.js";
import { RpcHandler } from "../protocol/rpc-server.js";

export const UNAUTHORIZED_CLOSE_CODE = 4401;

export interface WsTransportOptions {
  host: string;
  port: number;
  token?: string | undefined;
  /** Largest accepted frame in bytes. */
  maxPayload: number;
  handler: RpcHandler;
  log: Log;
}

export interface WsTransport {
  url: string;
  port: number;
  connections(): number;
  close(): Promise<void>;
}

const digest = (s: string): Buffer => createHash("sha256").update(s).digest();

function presentedToken(req: IncomingMessage): string | undefined {
  const header = req.headers.authorization;
  if (typeof header === "string" && header.startsWith("Bearer ")) return header.slice(7).trim();
  const url = new URL(req.url ?? "/", "ws://localhost");
  return url.searchParams.get("token") ?? undefined;
}

export function startWsTransport(options: WsTransportOptions): Promise<WsTransport> {
  const { handler, log } = options;
  const expected = options.token === undefined ? undefined : digest(options.token);
  return new Promise((resolve, reject) => {
    const wss = new WebSocketServer({ host: options.host, port: options.port, maxPayload: options.maxPayload });
    wss.once("error", reject);
    wss.on("connection", (ws: WebSocket, req: IncomingMessage) => {
      const peer = `${req.socket.remoteAddress ?? "?"}:${req.socket.remotePort ?? "?"}`;
      ws.on("error", (err) => log.warn("connection error", { peer, error: err.message }));
      if (expected !== undefined) {
        const given = presentedToken(req);
        if (given === undefined || !timingSafeEqual(digest(given), expected)) {
          log.warn("connection refused: missing or wrong token", { peer });
          ws.close(UNAUTHORIZED_CLOSE_CODE, "unauthorized: missing or wrong token");
          return;
        }
      }
      ws.on("message", (data, isBinary) => {
        if (isBinary) {
          ws.send(RpcHandler.refusal("binary frames are not accepted; send JSON text frames"));
          return;
        }
        const text = Buffer.isBuffer(data) ? data.toString("utf8") : Array.isArray(data) ? Buffer.concat(data).toString("utf8") : Buffer.from(data).toString("utf8");
        handler.handleText(text).then(
          (reply) => {
            if (reply !== null && ws.readyState === ws.OPEN) ws.send(reply);
          },
          (err: unknown) => log.error("unhandled error while answering", { peer, error: String(err) }),
        );
      });
    });
    wss.once("listening", () => {
      wss.off("error", reject);
      wss.on("error", (err) => log.error("server error", { error: err.message }));
      const { port, address, family } = wss.address() as AddressInfo;
      const host = family === "IPv6" ? `[${address}]` : address;
      resolve({
        url: `ws://${host}:${port}`,
        port,
        connections: () => wss.clients.size,
        close: () =>
          new Promise<void>((done) => {
            for (const client of wss.clients) client.close(1001, "service shutting down");
            wss.close(() => done());
            setTimeout(() => {
              for (const client of wss.clients) client.terminate();
            }, 1000).unref();
          }),
      });
    });
  });
}
