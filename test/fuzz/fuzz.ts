/**
 * `npm run fuzz` — sends random and mutated frames to the real service and fails (exit
 * code 1) on any broken guarantee: a request with an id without exactly one reply, a
 * malformed reply, a reply to a notification, an internal error, the process exiting or
 * not answering service.health, memory growing beyond the stated bound. See run.ts and
 * docs/reliability.md.
 *
 * Usage: npm run fuzz -- [--frames N] [--seed S] [--seconds LIMIT] [--connections C] [--max-live-growth MIB] [--max-rss-growth MIB] [--json]
 * Frame i depends only on (seed, i, N): a failure names its frame index and family, and
 * the same seed sends the same frames again.
 */
import { parseArgs } from "node:util";
import { DEFAULT_OPTIONS, runFuzz, type FuzzOptions } from "./run.js";
import { formatSummary } from "./summary.js";

function integerOption(name: string, raw: string, min: number): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer >= ${min}, got ${JSON.stringify(raw)}`);
  return n;
}

function readOptions(argv: string[]): { options: FuzzOptions; json: boolean } {
  const { values } = parseArgs({
    args: argv,
    options: {
      frames: { type: "string", default: String(DEFAULT_OPTIONS.frames) },
      seed: { type: "string", default: String(DEFAULT_OPTIONS.seed) },
      seconds: { type: "string", default: String(DEFAULT_OPTIONS.seconds) },
      connections: { type: "string", default: String(DEFAULT_OPTIONS.connections) },
      "max-live-growth": { type: "string", default: String(DEFAULT_OPTIONS.maxLiveGrowthMiB) },
      "max-rss-growth": { type: "string", default: String(DEFAULT_OPTIONS.maxRssGrowthMiB) },
      json: { type: "boolean", default: false },
    },
  });
  const options: FuzzOptions = {
    frames: integerOption("frames", values.frames, 1),
    seed: integerOption("seed", values.seed, 0),
    seconds: integerOption("seconds", values.seconds, 1),
    connections: integerOption("connections", values.connections, 1),
    maxLiveGrowthMiB: integerOption("max-live-growth", values["max-live-growth"], 1),
    maxRssGrowthMiB: integerOption("max-rss-growth", values["max-rss-growth"], 1),
    log: (line) => process.stderr.write(`${line}\n`),
  };
  return { options, json: values.json };
}

async function main(): Promise<number> {
  const { options, json } = readOptions(process.argv.slice(2));
  const summary = await runFuzz(options);
  process.stdout.write(`${json ? JSON.stringify(summary) : formatSummary(summary)}\n`);
  return summary.failures.length === 0 ? 0 : 1;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`fuzz: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  },
);
