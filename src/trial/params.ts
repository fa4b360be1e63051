/**
 * Hyperparameters from the environment: `BTTACKLER_PARAMS` holds a JSON object (the
 * Optuna relay, standalone and local hosts read it). Absent or empty means `{}`. The
 * bare tokens NaN/Infinity/-Infinity that Python's `json.dumps` writes are read as null.
 * Anything else that is not a JSON object is a configuration mistake and throws.
 */
import { isPlainObject, parseJson } from "../schema/json.js";
import type { TrialParams } from "./types.js";

export const PARAMS_ENV = "BTTACKLER_PARAMS";

export function paramsFromEnv(env: Record<string, string | undefined>): TrialParams {
  const text = env[PARAMS_ENV];
  if (text === undefined || text.trim() === "") return {};
  let value: unknown;
  try {
    value = parseJson(text);
  } catch (err) {
    throw new TypeError(`bttackler trial: ${PARAMS_ENV} is not JSON (${(err as Error).message})`);
  }
  if (!isPlainObject(value)) {
    throw new TypeError(`bttackler trial: ${PARAMS_ENV} must be a JSON object, got ${Array.isArray(value) ? "an array" : JSON.stringify(value)}`);
  }
  return value;
}
