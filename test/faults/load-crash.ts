/**
 * `npm run test:faults:load` — the service-benchmark load with a SIGKILL in the middle
 * and a restart on the same database: prints the counts and exits with code 1 when an
 * acknowledged report is missing from the database, a verdict differs from that of a
 * service that never stopped, or a step was never acknowledged. See load-crash-run.ts
 * and docs/reliability.md.
 *
 * Usage: npm run test:faults:load -- [--clients N] [--steps S] [--kill-at FRACTION]
 */
import { parseArgs } from "node:util";
import { DEFAULT_LOAD_CRASH, formatLoadCrash, runLoadCrash, type LoadCrashOptions } from "./load-crash-run.js";

function readOptions(argv: string[]): LoadCrashOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      clients: { type: "string", default: String(DEFAULT_LOAD_CRASH.clients) },
      steps: { type: "string", default: String(DEFAULT_LOAD_CRASH.steps) },
      "kill-at": { type: "string", default: String(DEFAULT_LOAD_CRASH.killAt) },
    },
  });
  const clients = Number(values.clients);
  const steps = Number(values.steps);
  const killAt = Number(values["kill-at"]);
  if (!Number.isInteger(clients) || clients < 1) throw new Error(`--clients must be an integer >= 1, got ${values.clients}`);
  if (!Number.isInteger(steps) || steps < 2) throw new Error(`--steps must be an integer >= 2, got ${values.steps}`);
  if (!(killAt > 0 && killAt < 1)) throw new Error(`--kill-at must be a fraction between 0 and 1, got ${values["kill-at"]}`);
  return { clients, steps, killAt, log: (line) => process.stderr.write(`${line}\n`) };
}

async function main(): Promise<number> {
  const summary = await runLoadCrash(readOptions(process.argv.slice(2)));
  process.stdout.write(`${formatLoadCrash(summary)}\n`);
  return summary.problems.length === 0 ? 0 : 1;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`load-crash: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  },
);
