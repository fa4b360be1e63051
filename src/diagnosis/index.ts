/** The pure diagnosis engine: no I/O, no clock. */
export { DiagnosisEngine, type TrialSummary } from "./engine.js";
export { EngineInputError } from "./errors.js";
export { Cohort } from "./cohort.js";
export { createRules, RULE_INDEX, type RuleIndexEntry } from "./rules.js";
export type { Finding, RuleContext, Series, SymptomRule } from "./rule.js";
export * from "./types.js";
