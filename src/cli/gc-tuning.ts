/**
 * V8 tuning of the `serve` process: allocation-site pretenuring off.
 *
 * Why: under load V8 starts allocating the objects of the answering path (parsed
 * frames, json-rpc promises) directly in the old generation, since during a burst many
 * of them are alive at a young-generation collection. Old objects that die are only
 * freed by a full collection; until then each one keeps the young objects it points to
 * alive, so at 1,000 decisions/s nearly every report's objects were promoted (1.4-1.9 MB
 * per scavenge). With pretenuring off: 0.4-0.5 MB per scavenge, and half the GC time.
 * Figures and commands: docs/performance.md ("Where the tail is").
 *
 * V8 reads this flag at every collection, so setting it at start-up takes effect
 * (unlike heap sizes). A flag given on the command line or in NODE_OPTIONS wins:
 * `node --allocation-site-pretenuring dist/cli/main.js serve` keeps V8's default.
 */
import { setFlagsFromString } from "node:v8";

export const PRETENURING_OFF = "--no-allocation-site-pretenuring";

/** The V8 flag `serve` sets, or undefined when the user already chose one either way. */
export function gcTuningFlag(execArgv: readonly string[], nodeOptions: string | undefined): string | undefined {
  const given = [...execArgv, ...(nodeOptions ?? "").split(/\s+/)];
  const chosen = given.some((a) => /^--(no-)?allocation[-_]site[-_]pretenuring$/.test(a));
  return chosen ? undefined : PRETENURING_OFF;
}

/** Applies gcTuningFlag to this process; returns the flag set, if any. */
export function tuneGarbageCollection(): string | undefined {
  const flag = gcTuningFlag(process.execArgv, process.env.NODE_OPTIONS);
  if (flag !== undefined) setFlagsFromString(flag);
  return flag;
}
