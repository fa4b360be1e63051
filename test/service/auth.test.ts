/** Authentication: loopback by default, a token for anything else, clear refusals, the token never logged. */
import { Writable } from "node:stream";
import WebSocket from "ws";
import { describe, expect, it } from "vitest";
import { createLogger } from "../../src/service/logger.js";
import { ServiceStartError, startWsService } from "../../src/service/service.js";
import { CLI, RpcClient, serve, tempDb } from "./harness.js";
import { spawnSync } from "node:child_process";

const TOKEN = "s3cret-Token-4242";

function capture(): { lines: string[]; stream: Writable } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  return { lines, stream };
}

function closeOf(url: string, headers: Record<string, string> = {}): Promise<{ code: number; reason: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    ws.on("close", (code, reason) => resolve({ code, reason: reason.toString() }));
    ws.on("error", reject);
  });
}

describe("auth", () => {
  it("refuses to listen on a non-loopback address without a token", async () => {
    await expect(startWsService({ db: ":memory:", version: "t", log: createLogger(capture().stream), host: "0.0.0.0", port: 0 })).rejects.toThrow(
      ServiceStartError,
    );
    const cli = spawnSync(process.execPath, [CLI, "serve", "--host", "0.0.0.0", "--port", "0", "--db", ":memory:"], {
      env: { ...process.env, BTTACKLER_TOKEN: "" },
      encoding: "utf8",
    });
    expect(cli.status).toBe(2);
    expect(cli.stderr).toContain("refusing to listen on 0.0.0.0 without a token");
  });

  it("closes connections with a missing or wrong token (4401), accepts the right one by header or query, never logs it", async () => {
    const log = capture();
    const service = await startWsService({ db: tempDb(), version: "t", log: createLogger(log.stream, "debug"), host: "0.0.0.0", port: 0, token: TOKEN });
    const url = `ws://127.0.0.1:${service.port}`;
    try {
      expect(await closeOf(url)).toEqual({ code: 4401, reason: "unauthorized: missing or wrong token" });
      expect(await closeOf(url, { Authorization: "Bearer wrong" })).toEqual({ code: 4401, reason: "unauthorized: missing or wrong token" });
      expect(await closeOf(`${url}/?token=${TOKEN}x`)).toMatchObject({ code: 4401 });
      const byHeader = await RpcClient.connect(url, { Authorization: `Bearer ${TOKEN}` });
      expect(await byHeader.call("service.health")).toMatchObject({ status: "ok" });
      byHeader.close();
      const byQuery = await RpcClient.connect(`${url}/?token=${encodeURIComponent(TOKEN)}`);
      expect(await byQuery.call("trial.reportAndAssess", { study: "s", trial: "t", payload: { step: 0 } })).toMatchObject({ stop: false });
      byQuery.close();
    } finally {
      await service.close();
    }
    const all = log.lines.join("");
    expect(all).toContain("connection refused: missing or wrong token");
    expect(all).not.toContain(TOKEN);
  });

  it("takes the token from BTTACKLER_TOKEN in the CLI and keeps it out of the logs", async () => {
    const proc = await serve(["--db", tempDb()], { BTTACKLER_TOKEN: TOKEN });
    try {
      expect(await closeOf(proc.url)).toMatchObject({ code: 4401 });
      const ok = await RpcClient.connect(proc.url, { Authorization: `Bearer ${TOKEN}` });
      expect(await ok.call("service.health")).toMatchObject({ status: "ok" });
      ok.close();
    } finally {
      proc.child.kill("SIGTERM");
      expect(await proc.exited).toBe(0);
    }
    const logs = proc.logs.join("\n");
    expect(logs).toContain('"auth":"token"');
    expect(logs).not.toContain(TOKEN);
  });
});
