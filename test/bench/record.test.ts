/** The trace recorder (npm run bench:record) on a tiny slice: schema-valid payloads, resumable, seeded. */
import { execFile } from "node:child_process";
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { validatePayload } from "../../src/schema/validate.js";
import { parseRecordArgs } from "./record.js";
import { Prng, STREAMS, streamSeed } from "./record/prng.js";
import { record, shardPath, type RecordOptions } from "./record/recorder.js";
import { OPTIMIZERS, sampleConfig } from "./record/search-space.js";
import { readTraceFile as readAnyTraceFile, type TraceTrial as AnyTraceTrial } from "../../src/replay/trace-format.js";
import type { ModelKind, TrialConfig } from "./record/search-space.js";

type TraceTrial = AnyTraceTrial<TrialConfig, ModelKind>;
const readTraceFile = (path: string) => readAnyTraceFile<TrialConfig, ModelKind>(path);

const dir = mkdtempSync(join(tmpdir(), "bttackler-record-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const tiny = (out: string, overrides: Partial<RecordOptions> = {}): RecordOptions => ({
  trials: 2,
  epochs: 2,
  seed: 7,
  out,
  backend: "wasm",
  model: "mlp",
  split: { train: 120, val: 60, test: 60 },
  probe: 32,
  sampleEvery: 1,
  compress: false,
  ...overrides,
});

const trialsIn = (path: string): TraceTrial[] => readTraceFile(path).trials;

describe("bench:record", () => {
  it("records every epoch of every trial with schema-valid payloads, then resumes adding exactly the missing trial", { timeout: 30_000 }, async () => {
    const out = join(dir, "resume.jsonl");
    const first = await record(tiny(out));
    expect(first).toMatchObject({ resumed: 0, recorded: 2, schemaFailures: 0 });
    const trials = trialsIn(out);
    expect(trials.map((t) => t.trial)).toEqual([0, 1]);
    for (const t of trials) {
      expect(t.status).not.toBe("error");
      expect(t.epochs).toHaveLength(2);
      expect(t.schema_failures).toBe(0);
      t.epochs.forEach((e, step) => {
        expect(() => validatePayload(e.payload)).not.toThrow();
        expect(e.payload).toMatchObject({ step, max_steps: 2 });
        expect(Object.keys(e.payload.metrics ?? {}).sort()).toEqual(["train_acc", "train_loss", "val_acc", "val_loss"]);
        expect(e.payload.layers?.map((l) => l.name)).toEqual([...Array.from({ length: t.config.depth }, (_, i) => `hidden${i + 1}`), "logits"]);
        expect(e.test_acc === null || (e.test_acc >= 0 && e.test_acc <= 1)).toBe(true);
        expect(e.seconds).toBeGreaterThan(0);
        expect(e.cpu_seconds).toBeGreaterThan(0);
      });
    }

    // a recording killed mid-write leaves a partial line: it is cut off, then the run goes on
    appendFileSync(out, '{"format":"bttackler.trace.v1","trial":2,"conf');
    const second = await record(tiny(out, { trials: 3 }));
    expect(second).toMatchObject({ resumed: 2, recorded: 1 });
    expect(second.discardedBytes).toBeGreaterThan(0);
    const after = trialsIn(out);
    expect(after.map((t) => t.trial)).toEqual([0, 1, 2]);
    expect(JSON.stringify(after.slice(0, 2))).toBe(JSON.stringify(trials));
    expect(readFileSync(out, "utf8").endsWith("\n")).toBe(true);

    // nothing left to do: nothing recorded; --compress writes a gzip copy that reads back the same
    const third = await record(tiny(out, { trials: 3, compress: true }));
    expect(third).toMatchObject({ resumed: 3, recorded: 0 });
    expect(third.compressedPath).toBe(`${out}.gz`);
    expect(readTraceFile(`${out}.gz`).trials).toEqual(after);

    // a file recorded with other settings is refused
    await expect(record(tiny(out, { trials: 3, seed: 8 }))).rejects.toThrow(/recorded with .*Use another --out/);
  });

  it("derives trial i's config from (seed, i) only: the same seed gives the same configs, another seed others", { timeout: 30_000 }, async () => {
    const a = join(dir, "seed-a.jsonl");
    const b = join(dir, "seed-b.jsonl");
    await record(tiny(a, { trials: 2, epochs: 1 }));
    writeFileSync(b, "");
    await record(tiny(b, { trials: 2, epochs: 1 }));
    expect(trialsIn(b).map((t) => t.config)).toEqual(trialsIn(a).map((t) => t.config));
    // trial 1 does not depend on trial 0 having been drawn
    expect(sampleConfig(new Prng(streamSeed(7, 1, STREAMS.config)))).toEqual(trialsIn(a)[1]?.config);
    const others = Array.from({ length: 20 }, (_, i) => sampleConfig(new Prng(streamSeed(8, i, STREAMS.config))));
    expect(others.map((c) => c.lr)).not.toContain(trialsIn(a)[0]?.config.lr);
    // the space is what the docs say
    const many = Array.from({ length: 400 }, (_, i) => sampleConfig(new Prng(streamSeed(1, i, STREAMS.config))));
    expect(Math.min(...many.map((c) => c.lr))).toBeGreaterThanOrEqual(1e-4);
    expect(Math.max(...many.map((c) => c.lr))).toBeLessThanOrEqual(0.4);
    expect(new Set(many.map((c) => c.optimizer))).toEqual(new Set(OPTIMIZERS));
    expect(many.some((c) => c.weight_decay === 0) && many.some((c) => c.weight_decay > 0)).toBe(true);
    expect(Math.min(...many.map((c) => c.init_scale))).toBeGreaterThanOrEqual(0.01);
    expect(Math.max(...many.map((c) => c.init_scale))).toBeLessThanOrEqual(10);
  });

  it("records side by side in shards (one file each) and merges them in trial order on --compress", { timeout: 30_000 }, async () => {
    const out = join(dir, "sharded.jsonl");
    await record(tiny(out, { trials: 1, epochs: 1 }));
    const [a, b] = await Promise.all([
      record(tiny(out, { trials: 4, epochs: 1, shard: { index: 0, count: 2 } })),
      record(tiny(out, { trials: 4, epochs: 1, shard: { index: 1, count: 2 } })),
    ]);
    expect([a.recorded, b.recorded]).toEqual([1, 2]); // trial 0 was already in out
    expect(trialsIn(shardPath(out, { index: 0, count: 2 })).map((t) => t.trial)).toEqual([2]);
    expect(trialsIn(shardPath(out, { index: 1, count: 2 })).map((t) => t.trial)).toEqual([1, 3]);
    expect(trialsIn(out).map((t) => t.trial)).toEqual([0]);
    const merged = await record(tiny(out, { trials: 4, epochs: 1, compress: true }));
    expect(merged).toMatchObject({ resumed: 4, recorded: 0 });
    expect(trialsIn(out).map((t) => t.trial)).toEqual([0, 1, 2, 3]);
    expect(trialsIn(`${out}.gz`).map((t) => t.trial)).toEqual([0, 1, 2, 3]);
    expect(existsSync(shardPath(out, { index: 1, count: 2 }))).toBe(false);
  });

  it("parses its command line: defaults, the cnn's backend, refusals", () => {
    const defaults = parseRecordArgs([]);
    expect(defaults).toMatchObject({ trials: 300, epochs: 20, seed: 1, backend: "wasm", model: "mlp", split: { train: 3000, val: 2000, test: 2000 }, compress: false });
    expect(defaults.out).toMatch(/test\/bench\/traces\/mnist-mlp\.jsonl$/);
    expect(parseRecordArgs(["--model", "cnn"])).toMatchObject({ backend: "cpu", out: expect.stringMatching(/mnist-cnn\.jsonl$/) });
    expect(() => parseRecordArgs(["--trials", "0"])).toThrow(/--trials must be an integer >= 1, got 0/);
    expect(() => parseRecordArgs(["--backend", "webgl"])).toThrow(/--backend must be wasm or cpu/);
    expect(parseRecordArgs(["--shard", "1/2"]).shard).toEqual({ index: 1, count: 2 });
    expect(() => parseRecordArgs(["--shard", "2/2"])).toThrow(/--shard must be K\/N with 0 <= K < N \(e\.g\. 1\/2\), got 2\/2/);
  });

  it("runs as a script (the npm run bench:record entry point)", { timeout: 30_000 }, async () => {
    const out = join(dir, "cli.jsonl");
    const script = fileURLToPath(new URL("./record.ts", import.meta.url));
    const { stderr } = await promisify(execFile)(process.execPath, ["--import", "tsx", script, "--trials", "1", "--epochs", "1", "--train", "60", "--val", "30", "--test", "30", "--out", out]);
    expect(stderr).toMatch(/trial 1\/1 .*ETA/);
    expect(stderr).toMatch(/done: 1 trials recorded, 0 resumed, 0 schema failures/);
    expect(trialsIn(out)).toHaveLength(1);
  });
});
