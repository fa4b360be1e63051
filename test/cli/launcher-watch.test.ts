/**
 * The service ends with the npm process that started it (`npx bttackler serve`, `npm exec`):
 * a real `npm exec -c "node dist/cli/main.js serve ..."` (npm → sh -c → node, as npx runs it),
 * whose npm process is then killed, with SIGTERM and with SIGKILL.
 */
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { isAlive, isNpmCommand, npmLauncherChain, type ProcessTable } from "../../src/cli/launcher-watch.js";
import { CLI } from "../service/harness.js";

const dirs: string[] = [];
const pids: number[] = [];
afterAll(() => {
  for (const pid of pids) if (isAlive(pid)) process.kill(pid, "SIGKILL");
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** The pid of the process whose command line holds `needle` (a unique database path), from /proc. */
function pidWith(needle: string): number | undefined {
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const argv = readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0");
      if (argv.includes(needle) && argv.some((a) => a.endsWith("main.js"))) return Number(entry);
    } catch {
      /* gone meanwhile */
    }
  }
  return undefined;
}

async function until(check: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (check()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return check();
}

describe("launcher watch", () => {
  it("recognises npm's process and finds the chain sh -c → npm; nothing when npm is further up", () => {
    expect(isNpmCommand(["npm exec bttackler serve --port 8765"])).toBe(true);
    expect(isNpmCommand(["npx", "bttackler", "serve"])).toBe(true);
    expect(isNpmCommand(["/usr/bin/node", "/usr/lib/node_modules/npm/bin/npm-cli.js", "exec", "bttackler"])).toBe(true);
    expect(isNpmCommand(["node", "dist/cli/main.js", "serve"])).toBe(false);
    expect(isNpmCommand(["sh", "-c", "npm run build"])).toBe(false);
    const table = (tree: Record<number, [number, string[]]>): ProcessTable => ({
      parentOf: (pid) => tree[pid]?.[0],
      commandOf: (pid) => tree[pid]?.[1],
    });
    const npx = table({ 30: [20, ["sh", "-c", "bttackler serve"]], 20: [10, ["npm exec bttackler serve"]], 10: [1, ["bash"]] });
    expect(npmLauncherChain(30, npx)).toEqual([30, 20]);
    expect(npmLauncherChain(20, npx)).toEqual([20]);
    const deep = table({ 40: [30, ["node", "vitest"]], 30: [20, ["sh", "-c", "vitest run"]], 20: [1, ["npm test"]] });
    expect(npmLauncherChain(40, deep)).toEqual([]);
  });

  it.skipIf(!existsSync("/proc/self/cmdline")).each(["SIGTERM", "SIGKILL"] as const)(
    "a service started by npm exec stops when the npm process gets %s",
    async (signal) => {
      const dir = mkdtempSync(join(tmpdir(), "bttackler-npx-"));
      dirs.push(dir);
      const db = join(dir, "service.db");
      const npm = spawn("npm", ["exec", "--offline", "-c", `"${process.execPath}" "${CLI}" serve --port 0 --db "${db}"`], {
        cwd: dir,
        stdio: ["ignore", "ignore", "pipe"],
      });
      let logs = "";
      npm.stderr.on("data", (d: Buffer) => (logs += d.toString()));
      expect(await until(() => logs.includes("bttackler serve listening"), 30_000), logs).toBe(true);
      const service = pidWith(db);
      expect(service, "the service's pid").toBeDefined();
      pids.push(service as number);
      expect(isAlive(service as number)).toBe(true);
      process.kill(npm.pid as number, signal);
      expect(await until(() => !isAlive(service as number), 10_000), `the service (pid ${String(service)}) outlived npm`).toBe(true);
      // SIGKILL takes npm's stderr with it; on SIGTERM the service's goodbye may still come through
      if (signal === "SIGTERM" && logs.includes("shutting down")) expect(logs).toContain("the process that started the service is gone");
    },
    60_000,
  );
});
