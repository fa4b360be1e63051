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

/** A copy of a value in which every non-finite number (NaN, ±Infinity) is null, as it would be after a JSON round trip. */
export function nonFiniteToNull(value: unknown): unknown {
  if (typeof value === "number") return Number.isFinite(value) ? value : null;
  if (Array.isArray(value)) return value.map(nonFiniteToNull);
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = nonFiniteToNull(v);
    return out;
  }
  return value;
}
