/**
 * JSON text to values, accepting the bare tokens NaN, Infinity and -Infinity that
 * Python's `json.dumps` writes by default. They become null, which is how payload v1
 * carries a non-finite number. Everything else is strict JSON (JSON.parse).
 */

export class JsonSyntaxError extends Error {
  override readonly name = "JsonSyntaxError";
}

const TOKENS: readonly [string, number][] = [
  ["-Infinity", 9],
  ["Infinity", 8],
  ["NaN", 3],
];

/** Replaces NaN/Infinity/-Infinity outside strings with null. Returns the text unchanged when it has none. */
export function replaceNonFiniteTokens(text: string): string {
  if (!text.includes("NaN") && !text.includes("Infinity")) return text;
  let out = "";
  let copied = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92 /* \ */) i++;
      else if (c === 34 /* " */) inString = false;
      continue;
    }
    if (c === 34) {
      inString = true;
      continue;
    }
    if (c !== 78 /* N */ && c !== 73 /* I */ && c !== 45 /* - */) continue;
    for (const [token, len] of TOKENS) {
      if (text.startsWith(token, i) && !isWordChar(text.charCodeAt(i + len))) {
        out += text.slice(copied, i) + "null";
        i += len - 1;
        copied = i + 1;
        break;
      }
    }
  }
  return copied === 0 ? text : out + text.slice(copied);
}

function isWordChar(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95;
}

/** Parses JSON text (NaN/Infinity tokens allowed, as null). Throws JsonSyntaxError with a short reason. */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(replaceNonFiniteTokens(text));
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new JsonSyntaxError(`invalid JSON: ${reason}`);
  }
}

/** A JSON object (not null, not an array). */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Deepest nesting of arrays and objects that values from the outside may have; every schema here needs far less. */
export const MAX_NESTING = 64;

/** A value nested deeper than MAX_NESTING; refused before any recursive walk can exhaust the stack. */
export class NestingError extends Error {
  override readonly name = "NestingError";
}

/** Whether a value holds a non-finite number (NaN, ±Infinity) anywhere. Allocates nothing. */
function hasNonFinite(value: unknown, depth = 0): boolean {
  if (typeof value === "number") return !Number.isFinite(value);
  if (value === null || typeof value !== "object") return false;
  if (depth >= MAX_NESTING) throw new NestingError(`nested deeper than ${MAX_NESTING} levels`);
  if (Array.isArray(value)) {
    for (const v of value) if (hasNonFinite(v, depth + 1)) return true;
    return false;
  }
  for (const k in value) if (hasNonFinite((value as Record<string, unknown>)[k], depth + 1)) return true;
  return false;
}

function copyNonFiniteToNull(value: unknown): unknown {
  if (typeof value === "number") return Number.isFinite(value) ? value : null;
  if (Array.isArray(value)) return value.map(copyNonFiniteToNull);
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = copyNonFiniteToNull(v);
    return out;
  }
  return value;
}

/**
 * The value with every non-finite number (NaN, ±Infinity) as null, as it would be
 * after a JSON round trip: the value itself when it has none (the common case,
 * e.g. anything parsed from JSON text), otherwise a copy. Throws NestingError for a
 * value nested deeper than MAX_NESTING.
 */
export function nonFiniteToNull(value: unknown): unknown {
  return hasNonFinite(value) ? copyNonFiniteToNull(value) : value;
}
