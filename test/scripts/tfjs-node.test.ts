/**
 * scripts/tfjs-node.sh (`npm run setup:tfjs-node`) on bad input: one line, exit 1, and the installed
 * @tensorflow/tfjs-node (if any) left exactly as it was. The good path is what every test on the
 * "tensorflow" backend stands on (CI runs the script before the tests); here: a rerun is a no-op.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, mkdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { nativeBackendRequired } from "../tfjs-node.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const SCRIPT = join(ROOT, "scripts/tfjs-node.sh");
const LIVE = join(ROOT, "node_modules/@tensorflow/tfjs-node");
const DEPS_CACHE = join(ROOT, ".cache/tfjs-node/libtensorflow-2.16.2/lib/libtensorflow.so.2.9.1");
const temp = mkdtempSync(join(tmpdir(), "bttackler-tfjs-node-"));

afterAll(() => rmSync(temp, { recursive: true, force: true }));

function run(args: string[], env: Record<string, string>): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync("bash", [SCRIPT, ...args], { cwd: ROOT, env: { ...process.env, ...env }, encoding: "utf8", timeout: 600_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The installed package's state: absent, or its folder's identity (inode and mtime change when it is replaced). */
function liveState(): string {
  return existsSync(LIVE) ? `${statSync(LIVE).ino}:${statSync(LIVE).mtimeMs}` : "absent";
}

/** A zip with a wheel's METADATA naming `version`, and nothing else. */
function fakeWheel(version: string): string {
  const dir = join(temp, `wheel-${version}`);
  mkdirSync(join(dir, `tensorflow_cpu-${version}.dist-info`), { recursive: true });
  writeFileSync(join(dir, `tensorflow_cpu-${version}.dist-info/METADATA`), `Metadata-Version: 2.1\nName: tensorflow-cpu\nVersion: ${version}\n`);
  const wheel = join(temp, `tensorflow_cpu-${version}-cp311-cp311-manylinux2014_x86_64.whl`);
  const zip = spawnSync("python3", ["-m", "zipfile", "-c", wheel, `tensorflow_cpu-${version}.dist-info`], { cwd: dir });
  if (zip.status !== 0) throw new Error(`python3 -m zipfile failed: ${String(zip.stderr)}`);
  return wheel;
}

function expectOneLineFailure(r: { status: number | null; stdout: string; stderr: string }, message: RegExp): void {
  expect(r.status).toBe(1);
  const lines = r.stderr.trim().split("\n");
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^setup:tfjs-node: /);
  expect(lines[0]).toMatch(message);
}

describe("scripts/tfjs-node.sh", () => {
  it("refuses an unknown argument", () => {
    const r = run(["--bogus"], {});
    expect(r.status).toBe(2);
    expect(r.stderr.trim()).toBe("setup:tfjs-node: unknown argument '--bogus' (usage: scripts/tfjs-node.sh [--force])");
  });

  it("a missing wheel: one line, exit 1, nothing installed or removed", () => {
    const before = liveState();
    const r = run(["--force"], { BTTACKLER_TF_WHEEL: join(temp, "no-such.whl"), BTTACKLER_TFJS_NODE_CACHE: join(temp, "cache-missing") });
    expectOneLineFailure(r, /BTTACKLER_TF_WHEEL=.*no-such\.whl: no such file/);
    expect(liveState()).toBe(before);
  });

  it("a file that is not a wheel, and a wheel of the wrong version: one line each, exit 1, nothing changed", () => {
    const before = liveState();
    const notZip = join(temp, "not-a-wheel.whl");
    writeFileSync(notZip, "not a zip");
    expectOneLineFailure(run(["--force"], { BTTACKLER_TF_WHEEL: notZip, BTTACKLER_TFJS_NODE_CACHE: join(temp, "cache-bad") }), /not-a-wheel\.whl is not a wheel/);
    const wrong = run(["--force"], { BTTACKLER_TF_WHEEL: fakeWheel("2.15.0"), BTTACKLER_TFJS_NODE_CACHE: join(temp, "cache-wrong") });
    expectOneLineFailure(wrong, /is tensorflow-cpu 2\.15\.0, not tensorflow-cpu 2\.16\.2/);
    expect(existsSync(join(temp, "cache-wrong/libtensorflow-2.16.2"))).toBe(false);
    expect(liveState()).toBe(before);
  });

  const haveDeps = existsSync(DEPS_CACHE) && existsSync(LIVE);
  it.skipIf(!haveDeps && !nativeBackendRequired())("a failed build leaves the installed copy as it was and no staging folder; a rerun keeps it", () => {
    const before = liveState();
    // a compiler that always fails: the addon cannot build
    const failed = run(["--force"], { CXX: "false", CC: "false" });
    expectOneLineFailure(failed, /building the tfjs-node addon failed/);
    expect(liveState()).toBe(before);
    expect(spawnSync("sh", ["-c", `ls -a '${join(ROOT, "node_modules/@tensorflow")}' | grep -c tfjs-node-staging`], { encoding: "utf8" }).stdout.trim()).toBe("0");
    const again = run([], {});
    expect(again.status).toBe(0);
    expect(again.stdout).toMatch(/^setup:tfjs-node: already installed \(tfjs-node 4\.22\.0, TensorFlow 2\.16\.2, backend tensorflow\)/);
    expect(liveState()).toBe(before);
  });
});
