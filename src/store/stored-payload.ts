/**
 * Reading back a stored payload row: its body is the payload's JSON, or the whole JSON-RPC
 * request that carried it at params.payload (the row's `format`, see stored-types.ts).
 */
import type { PayloadV1 } from "../diagnosis/types.js";
import { parseJson } from "../schema/json.js";
import { validatePayload } from "../schema/validate.js";
import type { BodyFormat } from "./stored-types.js";

/** The payload of a stored body, normalised exactly as when it was accepted. */
export function storedPayload(body: string, format: BodyFormat): PayloadV1 {
  const parsed = parseJson(body) as { params?: { payload?: unknown } };
  return validatePayload(format === "request" ? parsed.params?.payload : parsed);
}
