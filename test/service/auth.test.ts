/** Authentication: loopback by default, a token for anything else, clear refusals, the token never logged. */
import { Writable } from "node:stream";
import WebSocket from "ws";
import { describe, expect, it } from "vitest";
import { createLogger } from "../../src/service/logger.js";
import { MIN_REMOTE_TOKEN_LENGTH, ServiceStartError, startWsService } from "../../src/service/service.js";
import { CLI, RpcClient, serve, tempDb, type ServeProcess } from "./harness.js";
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { dirname, join } from "node:path";

const TOKEN = "s3cret-Token-4242-0123456789abcdef"; // 34 characters: off loopback at least 32

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

/** A service refuses a connection without TOKEN (4401), serves one with it; then it is stopped and must exit 0. */
async function expectTokenRequiredThenStop(proc: ServeProcess): Promise<void> {
  try {
    expect(await closeOf(proc.url)).toMatchObject({ code: 4401 });
    const ok = await RpcClient.connect(proc.url, { Authorization: `Bearer ${TOKEN}` });
    expect(await ok.call("service.health")).toMatchObject({ status: "ok" });
    ok.close();
  } finally {
    proc.child.kill("SIGTERM");
    expect(await proc.exited).toBe(0);
  }
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

  it("refuses a token shorter than the minimum off loopback, naming the minimum and how to make one", async () => {
    const short = "x".repeat(MIN_REMOTE_TOKEN_LENGTH - 1);
    await expect(startWsService({ db: ":memory:", version: "t", log: createLogger(capture().stream), host: "0.0.0.0", port: 0, token: short })).rejects.toThrow(
      `refusing to listen on 0.0.0.0 with a token of ${MIN_REMOTE_TOKEN_LENGTH - 1} characters: off loopback a token needs at least ${MIN_REMOTE_TOKEN_LENGTH} (make one with: openssl rand -hex 32)`,
    );
    const cli = spawnSync(process.execPath, [CLI, "serve", "--host", "0.0.0.0", "--port", "0", "--db", ":memory:"], {
      env: { ...process.env, BTTACKLER_TOKEN: short },
      encoding: "utf8",
    });
    expect(cli.status).toBe(2);
    expect(cli.stderr).toContain("off loopback a token needs at least");
    expect(cli.stderr).not.toContain(short);
    // on loopback a short token is the user's choice
    const loopback = await startWsService({ db: ":memory:", version: "t", log: createLogger(capture().stream), port: 0, token: "short" });
    await loopback.close();
  });

  it("reads the token from --token-file (so it is not in the process list) and refuses a missing or empty file in one line", async () => {
    const file = join(dirname(tempDb()), "token");
    writeFileSync(file, `${TOKEN}\n`);
    const proc = await serve(["--db", tempDb(), "--token-file", file], { BTTACKLER_TOKEN: "" });
    expect(proc.child.spawnargs.join(" ")).not.toContain(TOKEN);
    await expectTokenRequiredThenStop(proc);
    expect(proc.logs.join("\n")).not.toContain(TOKEN);
    const missing = spawnSync(process.execPath, [CLI, "serve", "--port", "0", "--db", ":memory:", "--token-file", `${file}.missing`], { encoding: "utf8" });
    expect(missing.status).toBe(2);
    expect(missing.stderr).toMatch(/^bttackler: --token-file: cannot read .*token\.missing: ENOENT/);
    expect(missing.stderr.trim().split("\n")).toHaveLength(1);
    writeFileSync(file, "\n");
    const empty = spawnSync(process.execPath, [CLI, "serve", "--port", "0", "--db", ":memory:", "--token-file", file], { encoding: "utf8" });
    expect([empty.status, empty.stderr.trim()]).toEqual([2, `bttackler: --token-file ${file}: the token is empty`]);
  });

  it("warns that a --token on the command line is visible in the process list", async () => {
    const proc = await serve(["--db", tempDb(), "--token", TOKEN]);
    proc.child.kill("SIGTERM");
    expect(await proc.exited).toBe(0);
    expect(proc.logs.some((l) => l.includes("--token is visible to other users in the process list"))).toBe(true);
    expect(proc.logs.join("\n")).not.toContain(TOKEN);
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
    await expectTokenRequiredThenStop(proc);
    const logs = proc.logs.join("\n");
    expect(logs).toContain('"auth":"token"');
    expect(logs).not.toContain(TOKEN);
  });
});
