/**
 * The one definition of a trial's outcome (docs/benchmarks.md, "Outcomes") on golden traces:
 * test/fixtures/outcomes/*.jsonl, a maximized and a minimized task with a duplicate trial index,
 * an "error" trial, a non-finite one and values on the hopeless line, against the outcomes
 * worked out by hand in expected.json. test/bench/hpo/test_outcomes_golden.py checks the
 * simulator's reading of the same files against the same file.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { traceOutcomes } from "../../src/calibration/outcome.js";
import { readTraceFile } from "../../src/replay/trace-format.js";

const DIR = new URL("../fixtures/outcomes/", import.meta.url);

interface Expected {
  trial: number;
  final_score: number | null;
  hopeless: boolean;
  top_quartile: boolean;
}

const expected = JSON.parse(readFileSync(new URL("expected.json", DIR), "utf8")) as Record<string, Expected[] | string>;

describe("trial outcomes on the golden traces", () => {
  it.each(["maximize.jsonl", "minimize.jsonl"])("%s", (file) => {
    const { trials } = readTraceFile(new URL(file, DIR).pathname);
    const got = traceOutcomes(trials).map((o) => ({
      trial: o.index,
      final_score: o.finalScore === -Infinity ? null : o.finalScore,
      hopeless: o.hopeless,
      top_quartile: o.topQuartile,
    }));
    expect(got).toEqual(expected[file]);
  });
});
