/** The trial SDK: what a JavaScript training script imports (`import { trial } from "bttackler"`). */
export { trial } from "./trial.js";
export { detectHost } from "./detect.js";
export type { Trial, TrialOptions, TrialVerdict, TrialHostKind, TrialParams, FinalValue, MetricPicker } from "./types.js";
