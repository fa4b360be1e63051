/** A study configuration file given on the command line (`--config FILE`): read, parsed and completed, or a UsageError. */
import { readFileSync } from "node:fs";
import type { StudyConfig } from "../diagnosis/types.js";
import { parseJson } from "../schema/json.js";
import { resolveConfig } from "../schema/validate.js";
import { UsageError } from "./usage.js";

export function loadConfigFile(path: string): StudyConfig {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new UsageError(`cannot read --config ${path}: ${(err as Error).message}`);
  }
  try {
    return resolveConfig(parseJson(text), "config");
  } catch (err) {
    throw new UsageError(`--config ${path}: ${(err as Error).message}`);
  }
}
