/** `bttackler calibrate` through a real child process: the built CLI (npm test builds first). */
import { gzipSync } from "node:zlib";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { PRE_CALIBRATION_RULES } from "../helpers.js";
import { resolveConfig } from "../../src/schema/validate.js";
import { traceLines, trials } from "../calibration/synthetic.js";
import { runCli as run } from "./run-cli.js";

const dir = mkdtempSync(join(tmpdir(), "bttackler-calibrate-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const all = trials();
const traces = join(dir, "traces.jsonl");
writeFileSync(traces, traceLines(all));

describe("bttackler calibrate", { timeout: 60_000 }, () => {
  it("shows its usage with --help and is listed by bttackler --help", async () => {
    const help = await run(["calibrate", "--help"]);
    expect(help.code).toBe(0);
    expect(help.stderr).toBe("");
    expect(help.stdout).toMatch(/^Usage: bttackler calibrate /);
    expect(help.stdout).toContain("--budget R");
    expect((await run(["--help"])).stdout).toMatch(/^ {2}calibrate /m);
  });

  it("refuses bad options and missing or unreadable files with exit code 2", async () => {
    const cases: [string[], RegExp][] = [
      [["calibrate", "--budget", "1.5", traces], /--budget must be a number from 0 to 1/],
      [["calibrate", "--budget", "x", traces], /--budget must be a number from 0 to 1/],
      [["calibrate", "--passes", "0", traces], /--passes must be an integer/],
      [["calibrate"], /at least one trace file/],
      [["calibrate", join(dir, "missing.jsonl")], /cannot read/],
      [["calibrate", "--nope", traces], /Unknown option '--nope'.*see bttackler calibrate --help/],
    ];
    for (const [args, message] of cases) {
      const r = await run(args);
      expect(r.code, args.join(" ")).toBe(2);
      expect(r.stdout).toBe("");
      expect(r.stderr).toMatch(message);
    }
    const bad = join(dir, "bad.jsonl");
    writeFileSync(bad, '{"format":"other"}\n');
    const r = await run(["calibrate", bad]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("not a bttackler.trace.v1 trial line");
  });

  it("writes a config.v1 diff that resolveConfig accepts, and the table on standard error", async () => {
    // from the pre-calibration rules, under which DIV false-kills the spiky top trials of the synthetic set
    const start = join(dir, "pre-calibration.json");
    writeFileSync(start, JSON.stringify({ rules: PRE_CALIBRATION_RULES }));
    const r = await run(["calibrate", "--config", start, traces]);
    expect(r.stderr).toContain("64 trials (32 calibration, 32 evaluation)");
    expect(r.code).toBe(0);
    const diff = JSON.parse(r.stdout) as Record<string, unknown>;
    const config = resolveConfig(diff);
    expect(config.rules.SC.enabled).toBe(true);
    expect(r.stderr).toMatch(/\| calibration \(32 trials\) \| after \| 0\/9 \(0\.0 %\) \|/);
    expect(r.stderr).toMatch(/\| 1 \| DIV \|/);

    // the same trials gzipped and split over two files (one repeated) give the same config, written to --out
    const gz = join(dir, "even.jsonl.gz");
    writeFileSync(gz, gzipSync(traceLines(all.filter((t) => t.index % 2 === 0))));
    const odd = join(dir, "odd.jsonl");
    writeFileSync(odd, traceLines(all.filter((t) => t.index % 2 === 1)));
    const out = join(dir, "chosen.json");
    const again = await run(["calibrate", "--config", start, "--out", out, gz, odd, odd]);
    expect(again.code).toBe(0);
    expect(again.stdout).toBe("");
    expect(readFileSync(out, "utf8")).toBe(r.stdout);
  });

  it("starts from --config", async () => {
    const start = join(dir, "start.json");
    writeFileSync(start, JSON.stringify({ rules: { DIV: { enabled: false } } }));
    const r = await run(["calibrate", "--config", start, "--passes", "1", traces]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/\| calibration \(32 trials\) \| before \| 0\/9 /);
    const badStart = join(dir, "bad-start.json");
    writeFileSync(badStart, JSON.stringify({ rules: { DIV: { factor: 0 } } }));
    expect((await run(["calibrate", "--config", badStart, traces])).code).toBe(2);
  });
});
