/**
 * JSON values with holes for raw text: the fuzzer builds requests as values and then
 * writes them out, putting text that JSON.stringify cannot produce (1e400, NaN, -0,
 * 123456789012345678901234567890, thousands of nested brackets) where it wants it.
 */

/** Text written into the output as it is, unquoted. */
export class RawJson {
  constructor(readonly text: string) {}
}

export type FuzzJson = null | boolean | number | string | RawJson | FuzzJson[] | { [key: string]: FuzzJson };
export type FuzzObject = { [key: string]: FuzzJson };

export function isFuzzObject(value: FuzzJson | undefined): value is FuzzObject {
  return typeof value === "object" && value !== null && !Array.isArray(value) && !(value instanceof RawJson);
}

/** JSON text of a value, RawJson holes written verbatim. Recursive: values built here are shallow (deep nesting is RawJson). */
export function toJsonText(value: FuzzJson): string {
  if (value instanceof RawJson) return value.text;
  if (Array.isArray(value)) return `[${value.map(toJsonText).join(",")}]`;
  if (value !== null && typeof value === "object") {
    return `{${Object.entries(value)
      .map(([k, v]) => `${JSON.stringify(k)}:${toJsonText(v)}`)
      .join(",")}}`;
  }
  return JSON.stringify(value);
}

/** A deep copy (RawJson holes are immutable and shared): pool values must never be changed by a mutation. */
export function copyJson(value: FuzzJson): FuzzJson {
  if (Array.isArray(value)) return value.map(copyJson);
  if (isFuzzObject(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, copyJson(v)]));
  return value;
}

/** Every place in a value where something can be deleted or replaced: [parent, key] pairs, depth first. */
export function slotsOf(value: FuzzJson): [FuzzObject | FuzzJson[], string | number][] {
  const out: [FuzzObject | FuzzJson[], string | number][] = [];
  const walk = (v: FuzzJson): void => {
    if (Array.isArray(v)) {
      v.forEach((item, i) => {
        out.push([v, i]);
        walk(item);
      });
    } else if (isFuzzObject(v)) {
      for (const [k, item] of Object.entries(v)) {
        out.push([v, k]);
        walk(item);
      }
    }
  };
  walk(value);
  return out;
}

/** `depth` nested arrays or objects around `core`, balanced or (when `unbalanced`) missing their closing brackets. */
export function nestedText(depth: number, kind: "array" | "object" | "mixed", core: string, unbalanced = false): string {
  let open = "";
  let close = "";
  for (let i = 0; i < depth; i++) {
    const asObject = kind === "object" || (kind === "mixed" && i % 2 === 1);
    open += asObject ? '{"k":' : "[";
    close = (asObject ? "}" : "]") + close;
  }
  return unbalanced ? open + core : open + core + close;
}
