/**
 * A database serves one service: a second `bttackler serve` on the same --db refuses to start
 * (naming the holder), the lock dies with the holder (kill -9 included), and what the first one
 * acknowledged is what a restart restores. Files that are not a bttackler database are refused
 * with one line naming the path and exit code 2, over WebSocket and stdio alike.
 */
import { writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { runCli } from "../cli/run-cli.js";
import { payload, RpcClient, serve, tempDb } from "./harness.js";

/** Runs `serve` expecting a refusal: exit code 2 and exactly one line on standard error. */
async function refused(args: string[], input = ""): Promise<string> {
  const run = await runCli(["serve", "--port", "0", ...args], input);
  const lines = run.stderr.trim().split("\n");
  expect({ code: run.code, lines: lines.length }, run.stderr).toEqual({ code: 2, lines: 1 });
  expect(run.stderr).not.toMatch(/\n\s+at /); // no stack trace
  return lines[0] as string;
}

describe("one service per database", () => {
  it("a second serve on the same --db refuses to start and names the holder; after kill -9 of the holder a new one starts and restores the stop", async () => {
    const db = tempDb();
    const first = await serve(["--db", db]);
    const client = await RpcClient.connect(first.url);
    const bad = { ...payload(0), metrics: { train_loss: Number.NaN } };
    const verdict = await client.call<{ stop: boolean }>("trial.reportAndAssess", { study: "s", trial: "t", payload: bad });
    expect(verdict.stop).toBe(true);
    client.close();

    for (const transport of [[], ["--stdio"]]) {
      const line = await refused(["--db", db, ...transport]);
      expect(line).toContain(`${db} is in use by another bttackler service (pid ${String(first.child.pid)}`);
      expect(line).toContain("choose another --db");
    }

    first.child.kill("SIGKILL");
    await first.exited;
    const second = await serve(["--db", db]);
    const again = await RpcClient.connect(second.url);
    const history = await again.call<{ verdicts: { stop: boolean }[] }>("trial.history", { study: "s", trial: "t" });
    expect(history.verdicts.map((v) => v.stop)).toEqual([true]);
    again.close();
    second.child.kill("SIGTERM");
    expect(await second.exited).toBe(0);
  });

  it("a stopped service lets the next one start on the same --db", async () => {
    const db = tempDb();
    const first = await serve(["--db", db]);
    first.child.kill("SIGTERM");
    expect(await first.exited).toBe(0);
    const second = await serve(["--db", db]);
    second.child.kill("SIGTERM");
    expect(await second.exited).toBe(0);
  });
});

describe("serve refuses a file that is not a bttackler database", () => {
  it.each([[[]], [["--stdio"]]])("another application's SQLite file is refused and left untouched (%j)", async (transport) => {
    const db = tempDb();
    const other = new Database(db);
    other.exec("CREATE TABLE orders (id INTEGER PRIMARY KEY, item TEXT)");
    other.close();
    const line = await refused(["--db", db, ...transport]);
    expect(line).toBe(`bttackler: --db: ${db} is not a bttackler database (it holds tables orders); choose another --db`);
    const check = new Database(db, { readonly: true });
    const tables = check.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all();
    check.close();
    expect(tables).toEqual([{ name: "orders" }]);
  });

  it("a SQLite file with another application id is refused even when empty", async () => {
    const db = tempDb();
    const other = new Database(db);
    other.pragma("application_id = 1234");
    other.close();
    expect(await refused(["--db", db])).toContain(`${db} is not a bttackler database (it holds application id 1234)`);
  });

  it("a file that is not SQLite is refused with one line", async () => {
    const db = tempDb();
    writeFileSync(db, "these are my notes, not a database\n".repeat(100));
    const line = await refused(["--db", db]);
    expect(line).toMatch(new RegExp(`^bttackler: --db: cannot use ${db.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")} as a bttackler database: file is not a database$`));
  });

  it("a path in a folder that does not exist is refused with one line naming it", async () => {
    const db = join(dirname(tempDb()), "missing", "x.db");
    const line = await refused(["--db", db]);
    expect(line).toContain(`--db: cannot open ${db}`);
    expect(line).toContain("directory does not exist");
  });

  it("a database written by an earlier bttackler (tables, no application id) is still served", async () => {
    const db = tempDb();
    const first = await serve(["--db", db]);
    first.child.kill("SIGTERM");
    await first.exited;
    const old = new Database(db);
    old.pragma("application_id = 0");
    old.close();
    const second = await serve(["--db", db]);
    second.child.kill("SIGTERM");
    expect(await second.exited).toBe(0);
  });
});
