/** Public API of the bttackler package. */
export * from "./diagnosis/index.js";
export { parseJson, replaceNonFiniteTokens, nonFiniteToNull, JsonSyntaxError } from "./schema/json.js";
export {
  validatePayload,
  validateReplayEvent,
  resolveConfig,
  defaultConfig,
  formatIssue,
  ValidationError,
  type ValidationIssue,
  type ReplayEvent,
} from "./schema/validate.js";
export { trial, detectHost, type Trial, type TrialOptions, type TrialVerdict, type TrialHostKind, type TrialParams, type FinalValue, type MetricPicker } from "./trial/index.js";
