/**
 * `bttackler replay` through a real child process: the built CLI (npm test builds first).
 */
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { onLines } from "../serve-process.js";
import { CLI } from "../service/harness.js";
import { runCli as run } from "./run-cli.js";



function lines(text: string): Record<string, unknown>[] {
  return text
    .split("\n")
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

const ev = (trial: string, payload: Record<string, unknown>, study = "s"): string =>
  JSON.stringify({ study, trial, payload });

/** A healthy 10-layer payload: loss falling, sane gradients. */
function healthy(step: number): Record<string, unknown> {
  const loss = 2.3 * Math.exp(-0.3 * step) + 0.1;
  return {
    step,
    max_steps: 20,
    metrics: { train_loss: loss, val_loss: loss * 1.1, train_acc: 1 - loss / 2.4, val_acc: 1 - loss / 2.3 },
    layers: Array.from({ length: 10 }, (_, i) => ({
      name: `dense_${i}`,
      grad_abs_mean: 1e-3 * (1 + 0.1 * i),
      grad_zero_frac: 0.05,
      grad_abs_max: 0.05,
      weight_abs_mean: 0.05,
      update_ratio: 0.05,
    })),
    non_finite: false,
    seconds: 1.5,
  };
}

const tempDirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "bttackler-replay-"));
  tempDirs.push(dir);
  return dir;
}
afterAll(() => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

let child: ChildProcessWithoutNullStreams | undefined;
afterEach(() => {
  child?.kill();
  child = undefined;
});

describe("bttackler replay (child process)", () => {
  it("answers each payload before the next one is written (interleaved write/read)", async () => {
    child = spawn(process.execPath, [CLI, "replay"]);
    const proc = child;
    const pending: ((line: string) => void)[] = [];
    const ready: string[] = [];
    onLines(proc.stdout, (line) => {
      const waiter = pending.shift();
      if (waiter) waiter(line);
      else ready.push(line);
    });
    const next = (): Promise<string> =>
      ready.length > 0 ? Promise.resolve(ready.shift() as string) : new Promise((resolve) => pending.push(resolve));

    for (let step = 0; step < 5; step++) {
      const payload = healthy(step);
      if (step === 4) (payload.metrics as Record<string, unknown>).train_loss = null;
      proc.stdin.write(`${ev("t1", payload)}\n`);
      const verdict = JSON.parse(await next()) as Record<string, unknown>;
      expect(verdict.step).toBe(step);
      expect(verdict.trial).toBe("t1");
      expect(verdict.stop).toBe(step === 4);
    }
    proc.stdin.end();
    const code = await new Promise((resolve) => proc.on("close", resolve));
    expect(code).toBe(0);
  });

  it("stops a trial that turns non-finite at that step with NF, and never stops a healthy one", async () => {
    const input: string[] = [];
    for (let step = 0; step < 20; step++) {
      input.push(ev("healthy", healthy(step)));
      const sick = healthy(step);
      if (step >= 7) sick.metrics = { train_loss: "NaN" };
      input.push(ev("sick", sick).replace('"NaN"', "NaN"));
    }
    const r = await run(["replay"], `${input.join("\n")}\n`);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const out = lines(r.stdout);
    expect(out).toHaveLength(40);
    expect(out.filter((v) => v.trial === "healthy").every((v) => v.stop === false)).toBe(true);
    const sick = out.filter((v) => v.trial === "sick");
    expect(sick.findIndex((v) => v.stop === true)).toBe(7);
    const symptoms = sick[7]?.symptoms as { code: string; action: string }[];
    expect(symptoms.map((s) => s.code)).toEqual(["NF"]);
    expect(symptoms[0]?.action).toBe("stop");
  });

  it("accepts Infinity and -Infinity tokens, reads a FILE argument and a --config", async () => {
    const dir = tempDir();
    const events = join(dir, "events.jsonl");
    writeFileSync(
      events,
      [
        ev("a", { step: 0, metrics: { train_loss: 1, score: 2 } }),
        '{"study":"s","trial":"a","payload":{"step":1,"metrics":{"train_loss":0.9,"score":Infinity}}}',
        '{"study":"s","trial":"b","payload":{"step":0,"metrics":{"train_loss":-Infinity}}}',
      ].join("\n"),
    );
    const config = join(dir, "config.json");
    writeFileSync(config, JSON.stringify({ rules: { NF: { ignore_metrics: ["score"] } } }));
    const r = await run(["replay", "--config", config, events]);
    expect(r.code).toBe(0);
    expect(lines(r.stdout).map((v) => [v.trial, v.step, v.stop])).toEqual([
      ["a", 0, false],
      ["a", 1, false],
      ["b", 0, true],
    ]);
  });

  it("reports malformed lines on stderr with their line numbers, goes on, and exits non-zero", async () => {
    const input = [
      ev("a", { step: 0, metrics: { train_loss: 1 } }),
      "{not json",
      JSON.stringify({ study: "s", trial: "a", payload: { step: "one" } }),
      "",
      JSON.stringify({ study: "s", trial: "a" }),
      ev("a", { step: 1, metrics: { train_loss: 0.8 } }),
      ev("a", { step: 0, metrics: { train_loss: 0.8 } }).replace('"step":0', '"step":0,"extra":1'),
    ].join("\n");
    const r = await run(["replay"], input);
    expect(r.code).toBe(1);
    const err = r.stderr.trim().split("\n");
    expect(err).toHaveLength(4);
    expect(err[0]).toMatch(/^bttackler replay: line 2: invalid JSON/);
    expect(err[1]).toContain("line 3: event.payload.step: got \"one\", expected an integer");
    expect(err[2]).toContain("line 5: event: got");
    expect(err[2]).toContain("exactly one of the fields payload and end");
    expect(err[3]).toContain("line 7: event.payload.extra: got 1, expected no such field");
    const out = lines(r.stdout);
    expect(out.map((v) => v.line ?? `step ${String(v.step)}`)).toEqual(["step 0", 2, 3, 5, "step 1", 7]);
  });

  it("answers an end of a study or trial that reported no step with an error line, and still accepts that trial's payloads", async () => {
    const end = (study: string, trial: string): string => JSON.stringify({ study, trial, end: { state: "complete" } });
    const input = [end("never", "t"), ev("a", { step: 0, metrics: { train_loss: 1 } }), end("s", "ghost"), ev("ghost", { step: 0, metrics: { train_loss: 1 } })].join("\n");
    const r = await run(["replay"], input);
    expect(r.code).toBe(1);
    const err = r.stderr.trim().split("\n");
    expect(err).toEqual([
      "bttackler replay: line 1: unknown study never: it reported no step, so trial t cannot end",
      "bttackler replay: line 3: unknown trial ghost: it reported no step, so it cannot end",
    ]);
    expect(lines(r.stdout).map((v) => [v.line ?? null, v.study, v.trial, v.step ?? null])).toEqual([
      [1, "never", "t", null],
      [null, "s", "a", 0],
      [3, "s", "ghost", null],
      [null, "s", "ghost", 0],
    ]);
  });

  it("rejects an oversized line without reading it whole and goes on", async () => {
    const big = ev("a", { step: 0, metrics: { train_loss: 1, pad: 1 } }).replace('"pad":1', `"pad":1${" ".repeat(5000)}`);
    const r = await run(["replay", "--max-line-bytes", "1000"], `${big}\n${ev("a", { step: 0, metrics: { train_loss: 1 } })}\n`);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/line 1: line of \d+ bytes exceeds --max-line-bytes 1000/);
    expect(lines(r.stdout).map((v) => v.line ?? v.step)).toEqual([1, 0]);
  });

  it("counts --max-line-bytes in bytes: a line of few characters but many UTF-8 bytes is refused", async () => {
    // 400 "é" in a study name: about 470 characters, about 870 bytes
    const wide = ev("a", { step: 0, metrics: { train_loss: 1 } }, "é".repeat(400));
    expect(wide.length).toBeLessThan(600);
    expect(Buffer.byteLength(wide)).toBeGreaterThan(600);
    const r = await run(["replay", "--max-line-bytes", "600"], `${wide}\n${ev("a", { step: 0, metrics: { train_loss: 1 } })}\n`);
    expect(r.stderr).toBe(`bttackler replay: line 1: line of ${Buffer.byteLength(wide)} bytes exceeds --max-line-bytes 600\n`);
    expect(lines(r.stdout).map((v) => v.line ?? v.step)).toEqual([1, 0]);
  });

  it("diagnoses the example in docs/examples/replay as the README says", async () => {
    const example = fileURLToPath(new URL("../../docs/examples/replay/events.jsonl", import.meta.url));
    const r = await run(["replay", example]);
    expect(r.code).toBe(0);
    const firstStop = new Map<string, string>();
    for (const v of lines(r.stdout)) {
      const trial = v.trial as string;
      if (v.stop === true && !firstStop.has(trial)) {
        const codes = (v.symptoms as { code: string }[]).map((s) => s.code);
        firstStop.set(trial, `${String(v.step)} ${[...new Set(codes)].join(",")}`);
      }
    }
    expect(Object.fromEntries(firstStop)).toEqual({ vanishing: "2 VG", exploding: "3 EG", "nan-loss": "5 NF" });
  });

  it("prints help for the program and for replay, and exits 2 on a usage error", async () => {
    const top = await run(["--help"]);
    expect(top.code).toBe(0);
    expect(top.stdout).toContain("replay");
    const sub = await run(["replay", "--help"]);
    expect(sub.code).toBe(0);
    expect(sub.stdout).toContain("--config FILE");
    const bad = await run(["nonsense"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('unknown command "nonsense"');
    const badConfig = await run(["replay", "--config", "/nonexistent/config.json"]);
    expect(badConfig.code).toBe(2);
  });

  it("refuses a config with an unknown field, naming it", async () => {
    const dir = tempDir();
    const config = join(dir, "config.json");
    writeFileSync(config, JSON.stringify({ rules: { EG: { grad_median_maxx: 5 } } }));
    const r = await run(["replay", "--config", config], "");
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("config.rules.EG.grad_median_maxx");
  });
});
