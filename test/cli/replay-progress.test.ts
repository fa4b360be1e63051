/**
 * `bttackler replay FILE` in-process with fake streams: a large file shows a progress bar on
 * a terminal standard error, never on standard output, and not at all when standard error is
 * not a terminal, standard output is one, or the file is small.
 */
import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough, Writable } from "node:stream";
import { afterAll, describe, expect, it } from "vitest";
import { REPLAY_PROGRESS_MIN_BYTES, replayCommand } from "../../src/cli/replay.js";

class Collector extends Writable {
  text = "";
  constructor(
    readonly isTTY: boolean,
    readonly columns = 100,
  ) {
    super();
  }
  override _write(chunk: Buffer, _encoding: BufferEncoding, done: () => void): void {
    this.text += chunk.toString();
    done();
  }
}

const dir = mkdtempSync(join(tmpdir(), "bttackler-replay-progress-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A replay file of `lines` payload lines of two trials (about 330 bytes each), and one broken line in the middle. */
function replayFile(name: string, lines: number): string {
  const layers = Array.from({ length: 4 }, (_, i) => ({ name: `dense_${i}`, grad_abs_mean: 1e-3, grad_zero_frac: 0.05 }));
  const text: string[] = [];
  for (let i = 0; i < lines; i++) {
    const trial = `t${i % 2}`;
    const step = Math.floor(i / 2);
    text.push(JSON.stringify({ study: "s", trial, payload: { step, max_steps: lines, metrics: { train_loss: 1 / (step + 1) }, layers } }));
    if (i === Math.floor(lines / 2)) text.push("{broken");
  }
  const path = join(dir, name);
  writeFileSync(path, `${text.join("\n")}\n`);
  return path;
}

async function replay(file: string, stderrIsTTY: boolean, stdoutIsTTY = false): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = new Collector(stdoutIsTTY);
  const stderr = new Collector(stderrIsTTY);
  const code = await replayCommand([file], { stdin: new PassThrough(), stdout, stderr });
  return { code, stdout: stdout.text, stderr: stderr.text };
}

describe("replay progress", { timeout: 60_000 }, () => {
  const large = replayFile("large.jsonl", 4000);
  const small = replayFile("small.jsonl", 20);

  it("draws a bar on a terminal standard error for a large file, erases it at the end, and keeps standard output to verdicts", async () => {
    const size = statSync(large).size;
    expect(size).toBeGreaterThan(REPLAY_PROGRESS_MIN_BYTES);
    const r = await replay(large, true);
    expect(r.code).toBe(1); // the broken line
    // the first drawing, at 0 of the file's size
    expect(r.stderr.startsWith(`\rreplay [`)).toBe(true);
    expect(r.stderr).toContain(`0%  0 B/${(size / 1e6).toFixed(2)} MB`);
    // the error message is written on a cleared line, not glued to the bar
    expect(r.stderr).toMatch(/\r\x1b\[Kbttackler replay: line \d+: /);
    expect(r.stderr.endsWith("\r\x1b[K")).toBe(true);
    const out = r.stdout.trim().split("\n");
    expect(out).toHaveLength(4001);
    for (const line of out) expect(() => JSON.parse(line) as unknown).not.toThrow();
    expect(r.stdout).not.toContain("\r");
  });

  it("draws nothing when standard error is not a terminal, standard output is one, or the file is small", async () => {
    for (const r of [await replay(large, false), await replay(large, true, true), await replay(small, true)]) {
      expect(r.stderr).not.toContain("\r");
      expect(r.stderr).toMatch(/^bttackler replay: line \d+: [^\n]+\n$/);
    }
  });
});
