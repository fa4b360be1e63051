/**
 * Which host runs this trial, from the environment, first match wins:
 * 1. `NNI_TRIAL_COMMAND_CHANNEL` set → NNI 3.0 (nni-host.ts);
 * 2. `BTTACKLER_RELAY_FD` set → the Optuna relay (relay-host.ts);
 * 3. `BTTACKLER_URL` set → standalone, straight to `bttackler serve` (standalone-host.ts);
 * 4. none of these → local, no host at all (local-host.ts).
 * An empty variable counts as unset.
 */
import { NNI_CHANNEL_ENV } from "./nni-host.js";
import { RELAY_FD_ENV } from "./relay-host.js";
import { URL_ENV } from "./standalone-host.js";
import type { TrialHostKind } from "./types.js";

export function detectHost(env: Record<string, string | undefined>): TrialHostKind {
  if (env[NNI_CHANNEL_ENV]) return "nni";
  if (env[RELAY_FD_ENV]) return "optuna";
  if (env[URL_ENV]) return "standalone";
  return "local";
}
