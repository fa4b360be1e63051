/** The rule index (src/diagnosis/rules.ts): every symptom code with its doc section, its rule file and its test file. */
import { existsSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { createRules, RULE_INDEX } from "../../src/diagnosis/rules.js";
import { SYMPTOM_CODES } from "../../src/diagnosis/types.js";
import { onlyRules } from "../helpers.js";

const ROOT = new URL("../../", import.meta.url);
const SYMPTOMS_MD = readFileSync(new URL("docs/symptoms.md", ROOT), "utf8");

describe("the rule index", () => {
  it("lists every symptom code once", () => {
    expect(RULE_INDEX.map((r) => r.code).sort()).toEqual([...SYMPTOM_CODES].sort());
  });

  it.each(RULE_INDEX.map((r) => [r.code, r] as const))("%s has its section in docs/symptoms.md, titled with its name", (code, entry) => {
    expect(SYMPTOMS_MD).toContain(`\n## ${code} — ${entry.name}\n`);
    expect(SYMPTOMS_MD).toContain(`| ${code} | \`src/diagnosis/${entry.file}\` | \`test/diagnosis/${entry.file.replace(/\.ts$/, ".test.ts")}\` |`);
  });

  it.each(RULE_INDEX.map((r) => [r.code, r] as const))("%s has its rule file and its test file", (code, entry) => {
    const source = new URL(`src/diagnosis/${entry.file}`, ROOT);
    expect(existsSync(source)).toBe(true);
    const rule = entry.create(onlyRules([code]).rules, onlyRules([code]).objective);
    expect(rule.code).toBe(code);
    expect(readFileSync(source, "utf8")).toContain(`class ${rule.constructor.name} `);
    expect(existsSync(new URL(`test/diagnosis/${entry.file.replace(/\.ts$/, ".test.ts")}`, ROOT))).toBe(true);
  });

  it("builds the enabled families in index order", () => {
    const config = onlyRules(["NF", "DIV", "PROG"]);
    expect(createRules(config.rules, config.objective).map((r) => r.code)).toEqual(["NF", "DIV", "PROG"]);
  });
});
