/** Short human names of the symptom codes, as docs/symptoms.md titles them (from the rule index, src/diagnosis/rules.ts). */
import { RULE_INDEX } from "../diagnosis/rules.js";
import type { SymptomCode } from "../diagnosis/types.js";

export const SYMPTOM_NAMES: Readonly<Record<SymptomCode, string>> = Object.fromEntries(RULE_INDEX.map((r) => [r.code, r.name])) as Record<SymptomCode, string>;
