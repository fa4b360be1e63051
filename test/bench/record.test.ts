/**
 * The trace recorder (npm run bench:record) on a tiny slice: schema-valid payloads, resumable, seeded;
 * the convnet and the loss-only char-rnn tasks on the native tensorflow backend (skipped outside CI
 * when @tensorflow/tfjs-node is not installed).
 */
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
import { CELLS, sampleCharRnnConfig, type CharRnnConfig } from "./record/char-rnn.js";
import { sampleConvnetConfig, type ConvnetConfig } from "./record/convnet.js";
import { loadTextSplit, TEXT_SPLIT_SEED, VOCABULARY, WINDOW } from "./record/text-data.js";
import { loadNativeBackend, NATIVE_BACKEND } from "../tfjs-node.js";

const nativeMissing = await loadNativeBackend();
if (nativeMissing !== undefined) console.warn(`skipping the recordings on the '${NATIVE_BACKEND}' backend: ${nativeMissing}`);

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

  describe.skipIf(nativeMissing !== undefined)("on the native tensorflow backend", () => {
    it("records the convnet task on mnist: conv blocks named conv1.., accuracy objective, seeded configs", { timeout: 120_000 }, async () => {
      const out = join(dir, "convnet.jsonl");
      const summary = await record(tiny(out, { model: "convnet", backend: "tensorflow", trials: 2, epochs: 2 }));
      expect(summary).toMatchObject({ recorded: 2, schemaFailures: 0 });
      const trials = readAnyTraceFile<ConvnetConfig>(out).trials;
      for (const t of trials) {
        expect(t).toMatchObject({ dataset: "mnist", model: "convnet", backend: "tensorflow", status: expect.stringMatching(/^(ok|non_finite)$/) });
        expect(t.objective).toBeUndefined();
        expect(t.config).toEqual(sampleConvnetConfig(new Prng(streamSeed(7, t.trial, STREAMS.config))));
        for (const e of t.epochs) {
          validatePayload(e.payload);
          expect(Object.keys(e.payload.metrics ?? {}).sort()).toEqual(["train_acc", "train_loss", "val_acc", "val_loss"]);
          expect(e.payload.layers?.map((l) => l.name)).toEqual([...Array.from({ length: t.config.blocks }, (_, i) => `conv${i + 1}`), "dense", "logits"]);
          expect(e.test_acc === null || (e.test_acc >= 0 && e.test_acc <= 1)).toBe(true);
        }
      }
    });

    it("records the char-rnn task on Moby-Dick loss-only: no accuracy anywhere, val_loss the objective, test_loss held out; resumes", { timeout: 120_000 }, async () => {
      const out = join(dir, "char-rnn.jsonl");
      const options = tiny(out, { model: "char-rnn", backend: "tensorflow", trials: 2, epochs: 2, split: { train: 64, val: 32, test: 32 } });
      await record({ ...options, trials: 1 });
      const summary = await record(options);
      expect(summary).toMatchObject({ resumed: 1, recorded: 1, schemaFailures: 0 });
      const trials = readAnyTraceFile<CharRnnConfig>(out).trials;
      expect(trials.map((t) => t.trial)).toEqual([0, 1]);
      for (const t of trials) {
        expect(t).toMatchObject({ dataset: "moby-dick", model: "char-rnn", objective: "val_loss", split: { seed: TEXT_SPLIT_SEED } });
        expect(t.config).toEqual(sampleCharRnnConfig(new Prng(streamSeed(7, t.trial, STREAMS.config))));
        expect(t.final.val_acc).toBeNull();
        expect(t.final.val_loss === null || (t.final.val_loss ?? 0) > 0).toBe(true);
        for (const e of t.epochs) {
          validatePayload(e.payload);
          expect(Object.keys(e.payload.metrics ?? {}).sort()).toEqual(["train_loss", "val_loss"]);
          expect(e.payload.layers?.map((l) => l.name)).toEqual([...Array.from({ length: t.config.depth }, (_, i) => `rnn${i + 1}`), "logits"]);
          expect(e.test_acc).toBeNull();
          expect(e.test_loss === null || (e.test_loss ?? 0) > 0).toBe(true);
        }
      }
    });
  });

  it("builds the Moby-Dick windows: a 36-character vocabulary, a fixed test set, a unigram baseline near 3 nats", { timeout: 60_000 }, () => {
    const small = loadTextSplit({ train: 50, val: 20, test: 30 });
    const large = loadTextSplit({ train: 80, val: 40, test: 30 });
    expect(VOCABULARY).toHaveLength(36);
    expect(Array.from(small.test.targets)).toEqual(Array.from(large.test.targets));
    for (const set of [small.train, small.val, small.test]) {
      expect(set.targets.length).toBe(set.count * WINDOW * VOCABULARY.length);
      expect(set.targets.reduce((a, b) => a + b, 0)).toBe(set.count * WINDOW);
      // the targets are the inputs shifted by one character
      for (let t = 0; t + 1 < WINDOW; t++) {
        const at = (data: Float32Array, n: number, pos: number): number => data.slice((n * WINDOW + pos) * VOCABULARY.length, (n * WINDOW + pos + 1) * VOCABULARY.length).indexOf(1);
        expect(at(set.targets, 0, t)).toBe(at(set.inputs, 0, t + 1));
      }
      expect(set.inputs.reduce((a, b) => a + b, 0)).toBe(set.count * WINDOW);
    }
    const unigram = loadTextSplit().unigramLoss;
    expect(unigram).toBeGreaterThan(2.5);
    expect(unigram).toBeLessThan(3.5);
    expect(() => loadTextSplit({ train: 1e9, val: 1, test: 1 })).toThrow(/Moby-Dick gives \d+ windows of 17 characters; the split asks for/);
  });

  it("draws the convnet and char-rnn spaces as documented, bad regions included", () => {
    const convnets = Array.from({ length: 400 }, (_, i) => sampleConvnetConfig(new Prng(streamSeed(1, i, STREAMS.config))));
    expect(new Set(convnets.map((c) => c.blocks))).toEqual(new Set([1, 2, 3]));
    expect(Math.max(...convnets.map((c) => c.lr))).toBeGreaterThan(0.1);
    expect(Math.min(...convnets.map((c) => c.init_scale))).toBeLessThan(0.05);
    expect(Math.max(...convnets.map((c) => c.init_scale))).toBeGreaterThan(5);
    const rnns = Array.from({ length: 400 }, (_, i) => sampleCharRnnConfig(new Prng(streamSeed(1, i, STREAMS.config))));
    expect(new Set(rnns.map((c) => c.cell))).toEqual(new Set(CELLS));
    expect(Math.max(...rnns.map((c) => c.lr))).toBeLessThanOrEqual(1);
    expect(Math.max(...rnns.map((c) => c.lr))).toBeGreaterThan(0.3);
    expect(Math.max(...rnns.map((c) => c.recurrent_scale))).toBeGreaterThan(5);
    expect(Math.min(...rnns.map((c) => c.recurrent_scale))).toBeLessThan(0.2);
  });

  it("parses its command line: defaults, the cnn's backend, refusals", () => {
    const defaults = parseRecordArgs([]);
    expect(defaults).toMatchObject({ trials: 300, epochs: 20, seed: 1, backend: "wasm", model: "mlp", split: { train: 3000, val: 2000, test: 2000 }, compress: false });
    expect(defaults.out).toMatch(/test\/bench\/traces\/mnist-mlp\.jsonl$/);
    expect(parseRecordArgs(["--model", "cnn"])).toMatchObject({ backend: "cpu", out: expect.stringMatching(/mnist-cnn\.jsonl$/) });
    expect(() => parseRecordArgs(["--trials", "0"])).toThrow(/--trials must be an integer >= 1, got 0/);
    expect(() => parseRecordArgs(["--backend", "webgl"])).toThrow(/--backend must be one of wasm, cpu, tensorflow, got webgl/);
    expect(parseRecordArgs(["--model", "convnet"])).toMatchObject({ backend: "tensorflow", split: { train: 1000, val: 500, test: 1000 }, out: expect.stringMatching(/mnist-convnet\.jsonl$/) });
    expect(parseRecordArgs(["--model", "char-rnn"])).toMatchObject({ backend: "tensorflow", split: { train: 1000, val: 400, test: 800 }, out: expect.stringMatching(/moby-dick-char-rnn\.jsonl$/) });
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
