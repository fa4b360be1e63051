/**
 * The trial SDK's WebSocket client against a server that misbehaves in ways the real service
 * never does on its own (a frame that is not JSON, an error reply with a null id): the caller
 * gets what the server said at once, not a time-out. A fake server is the only way to send these.
 */
import { afterEach, describe, expect, it } from "vitest";
import { WebSocketServer, type WebSocket } from "ws";
import { RpcFailure, TrialRpcClient } from "../../src/trial/ws-client.js";

const servers: WebSocketServer[] = [];
const clients: TrialRpcClient[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await Promise.all(servers.splice(0).map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
});

/** A server on a free loopback port that answers every frame with `answer(frame)`. */
async function fakeService(answer: (frame: string, ws: WebSocket) => void): Promise<string> {
  const server = new WebSocketServer({ host: "127.0.0.1", port: 0 });
  servers.push(server);
  await new Promise<void>((resolve) => server.once("listening", () => resolve()));
  server.on("connection", (ws) => ws.on("message", (data) => answer(data.toString(), ws)));
  const { port } = server.address() as { port: number };
  return `ws://127.0.0.1:${port}`;
}

/** The failure a call rejects with, and how long it took. */
async function failure(client: TrialRpcClient): Promise<{ err: RpcFailure; ms: number }> {
  const started = Date.now();
  try {
    await client.call("service.health", {});
  } catch (err) {
    if (err instanceof RpcFailure) return { err, ms: Date.now() - started };
    throw err;
  }
  throw new Error("expected the call to fail");
}

function client(url: string): TrialRpcClient {
  const c = new TrialRpcClient(url, { timeoutMs: 5000 });
  clients.push(c);
  return c;
}

describe("TrialRpcClient", () => {
  it("fails a waiting call at once with the text of a frame that is not JSON", async () => {
    const url = await fakeService((_frame, ws) => ws.send("<html>502 Bad Gateway</html>"));
    const { err, ms } = await failure(client(url));
    expect(err.message).toMatch(/^the service sent a frame that is not JSON \(.*\): <html>502 Bad Gateway<\/html>$/);
    expect(ms).toBeLessThan(4000);
  });

  it.each([
    ["null", { id: null }],
    ["missing", {}],
  ])("fails a waiting call at once with an error reply whose id is %s, keeping its code and message", async (_how, id) => {
    const url = await fakeService((_frame, ws) => ws.send(JSON.stringify({ jsonrpc: "2.0", ...id, error: { code: -32600, message: "invalid request: too big" } })));
    const { err, ms } = await failure(client(url));
    expect(err.code).toBe(-32600);
    expect(err.message).toBe("the service answered error -32600: invalid request: too big");
    expect(ms).toBeLessThan(4000);
  });

  it("still settles replies by id, and ignores a null-id frame that is no error", async () => {
    const url = await fakeService((frame, ws) => {
      const { id } = JSON.parse(frame) as { id: number };
      ws.send(JSON.stringify({ jsonrpc: "2.0", id: null, result: "stray" }));
      ws.send(JSON.stringify({ jsonrpc: "2.0", id, result: { status: "ok" } }));
    });
    expect(await client(url).call("service.health", {})).toEqual({ status: "ok" });
  });
});
