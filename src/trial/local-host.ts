/**
 * No host: the script runs on its own. Params come from `BTTACKLER_PARAMS` (or `{}`),
 * every report is answered `{stop: false}` (the trial keeps its payloads in
 * `trial.reports`), and `final` does nothing more than record the value — so the same
 * script runs unchanged outside NNI, Optuna and the service.
 */
import { randomUUID } from "node:crypto";
import { paramsFromEnv } from "./params.js";
import type { HostContext, TrialHost, TrialVerdict } from "./types.js";

export function openLocalHost(ctx: HostContext): TrialHost {
  return {
    kind: "local",
    id: ctx.env.BTTACKLER_TRIAL || `local-${randomUUID()}`,
    params: paramsFromEnv(ctx.env),
    report: (): Promise<TrialVerdict> => Promise.resolve({ stop: false }),
    final: (): Promise<void> => Promise.resolve(),
    close: (): void => {},
  };
}
