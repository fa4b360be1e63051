/**
 * The shipped defaults: every "Default" cell of docs/configuration.md's tables (top level,
 * protection, each rule family) equals what `resolveConfig({})` fills in, and every option the
 * code fills in has its row. The formula tests of test/diagnosis/ run on the pre-calibration
 * options instead (test/helpers.ts); this is where the defaults a user gets are checked.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { resolveConfig } from "../../src/schema/validate.js";

const DOC = readFileSync(new URL("../../docs/configuration.md", import.meta.url), "utf8");

/** The rows `field -> default` of the first Field/Default table after `heading` (a whole line of the document). */
function documentedDefaults(heading: string): Map<string, unknown> {
  const lines = DOC.split("\n");
  const start = lines.indexOf(heading);
  if (start < 0) throw new Error(`docs/configuration.md has no heading ${heading}`);
  const rows = new Map<string, unknown>();
  let inTable = false;
  for (const line of lines.slice(start + 1)) {
    if (line.startsWith("#")) break;
    if (line.startsWith("| Field | Type | Default |")) {
      inTable = true;
      continue;
    }
    if (!inTable) continue;
    if (!line.startsWith("|")) break;
    const cells = line.split("|").map((c) => c.trim());
    const field = /^`([^`]+)`$/.exec(cells[1] ?? "")?.[1];
    const value = /^`([^`]+)`$/.exec(cells[3] ?? "")?.[1];
    if (field === undefined || value === undefined) continue; // a separator row, or "see below"
    rows.set(field, JSON.parse(value) as unknown);
  }
  return rows;
}

/** An object's leaves as `a.b -> value` (arrays are leaves). */
function flatten(value: Record<string, unknown>, prefix = ""): Map<string, unknown> {
  const out = new Map<string, unknown>();
  for (const [key, v] of Object.entries(value)) {
    if (v !== null && typeof v === "object" && !Array.isArray(v)) {
      for (const [k, w] of flatten(v as Record<string, unknown>, `${prefix}${key}.`)) out.set(k, w);
    } else out.set(`${prefix}${key}`, v);
  }
  return out;
}

const shipped = resolveConfig({});
const families = Object.keys(shipped.rules);

describe("the shipped defaults (resolveConfig({})) are the documented ones", () => {
  it("at the top level, for the objective and for protection", () => {
    // the objects (objective, protection, rules) say "see below": their sections are checked one by one
    const scalars = Object.entries(shipped).filter(([, v]) => v === null || typeof v !== "object");
    expect(documentedDefaults("## Top level")).toEqual(new Map(scalars));
    for (const section of ["objective", "protection"] as const) {
      expect(documentedDefaults(`## ${section}`), section).toEqual(flatten(shipped[section] as unknown as Record<string, unknown>));
    }
  });

  it.each(families)("for every option of %s", (code) => {
    const heading = DOC.split("\n").find((l) => l.startsWith(`### ${code} — `));
    expect(heading, `a section for ${code}`).toBeDefined();
    const options = flatten((shipped.rules as unknown as Record<string, Record<string, unknown>>)[code] as Record<string, unknown>);
    expect(documentedDefaults(heading as string)).toEqual(options);
  });
});
