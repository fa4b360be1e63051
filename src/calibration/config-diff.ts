/**
 * A resolved config written as the smallest config.v1 document that resolves to it: only
 * the fields that differ from the defaults (whole arrays when they differ).
 */
import type { StudyConfig } from "../diagnosis/types.js";

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

function diff(value: Json, base: Json): Json | undefined {
  if (JSON.stringify(value) === JSON.stringify(base)) return undefined;
  if (value === null || base === null || typeof value !== "object" || typeof base !== "object" || Array.isArray(value) || Array.isArray(base)) {
    return value;
  }
  const out: { [key: string]: Json } = {};
  for (const [key, v] of Object.entries(value)) {
    const d = diff(v, base[key] ?? null);
    if (d !== undefined) out[key] = d;
  }
  // equal content written in another key order: nothing differs
  return Object.keys(out).length === 0 ? undefined : out;
}

/** The fields of `config` that differ from `defaults`, nested as in config.v1; {} when none. */
export function configDiff(config: StudyConfig, defaults: StudyConfig): Record<string, unknown> {
  const d = diff(config as unknown as Json, defaults as unknown as Json);
  return (d ?? {}) as Record<string, unknown>;
}
