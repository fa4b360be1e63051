/**
 * What the service must answer to a frame, from JSON-RPC 2.0 and docs/protocol.md alone:
 * nothing for a notification, one reply per request that has an id, the reply's id the
 * request's, null when the frame is not JSON (-32700) or the id cannot be read
 * (-32600); a batch answered by one array holding a reply per non-notification member,
 * or nothing when every member is a notification; an empty or over-limit batch by one
 * -32600 error. And whether a reply is a well-formed JSON-RPC 2.0 response.
 *
 * Frames are read as the protocol says the service reads them: JSON, with the bare
 * tokens NaN/Infinity/-Infinity as null (parseJson of src/schema/json.ts, the documented
 * reader). A number id that JSON text can hold but a double cannot (1e400) is answered
 * with id null: ids are compared as JSON text (`idKey`).
 */
import { parseJson } from "../../src/schema/json.js";

/** The code a reply must carry: parse error, invalid request, or whatever the method answers. */
export type ExpectedCode = "parse" | "invalid" | "any";

export interface ExpectedReply {
  /** JSON text of the expected id (`idKey`). */
  id: string;
  code: ExpectedCode;
}

export type Expectation =
  | { kind: "none" }
  | { kind: "single"; reply: ExpectedReply }
  | { kind: "batch"; replies: ExpectedReply[] };

export const MAX_BATCH = 1000;

/** An id as JSON text, as it comes back in a reply (Infinity and NaN serialise as null, -0 as 0). */
export function idKey(id: unknown): string {
  return JSON.stringify(id) ?? "null";
}

const NULL_ID = idKey(null);

/** The expectation of a binary frame: one -32600 with id null, whatever the bytes. */
export const BINARY_EXPECTATION: Expectation = { kind: "single", reply: { id: NULL_ID, code: "invalid" } };

export function expectationOf(text: string): Expectation {
  let message: unknown;
  try {
    message = parseJson(text);
  } catch {
    return { kind: "single", reply: { id: NULL_ID, code: "parse" } };
  }
  if (!Array.isArray(message)) {
    const reply = expectedFor(message);
    return reply === undefined ? { kind: "none" } : { kind: "single", reply };
  }
  if (message.length === 0 || message.length > MAX_BATCH) return { kind: "single", reply: { id: NULL_ID, code: "invalid" } };
  const replies = message.map(expectedFor).filter((r): r is ExpectedReply => r !== undefined);
  return replies.length === 0 ? { kind: "none" } : { kind: "batch", replies };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isReadableId(id: unknown): id is string | number {
  return typeof id === "string" || typeof id === "number";
}

/** The reply a single message gets, or undefined for a valid notification. */
function expectedFor(message: unknown): ExpectedReply | undefined {
  if (!isObject(message)) return { id: NULL_ID, code: "invalid" };
  const hasId = Object.prototype.hasOwnProperty.call(message, "id");
  const id = message.id;
  const valid =
    message.jsonrpc === "2.0" &&
    typeof message.method === "string" &&
    (!hasId || id === null || isReadableId(id)) &&
    (!("params" in message) || (typeof message.params === "object" && message.params !== null)) &&
    !("result" in message) &&
    !("error" in message);
  if (!valid) return { id: isReadableId(id) ? idKey(id) : NULL_ID, code: "invalid" };
  return hasId ? { id: idKey(id), code: "any" } : undefined;
}

/** Why a value is not a JSON-RPC 2.0 response object, or undefined when it is one. */
export function responseProblem(value: unknown): string | undefined {
  if (!isObject(value)) return "a response must be a JSON object";
  const extra = Object.keys(value).filter((k) => !["jsonrpc", "id", "result", "error"].includes(k));
  if (extra.length > 0) return `unexpected member(s) ${extra.join(", ")}`;
  if (value.jsonrpc !== "2.0") return 'jsonrpc is not "2.0"';
  if (!("id" in value)) return "no id";
  if (value.id !== null && !isReadableId(value.id)) return "id is neither a string, a number nor null";
  if (("result" in value) === ("error" in value)) return "not exactly one of result and error";
  if (!("error" in value)) return undefined;
  const error = value.error;
  if (!isObject(error)) return "error is not an object";
  if (!Number.isInteger(error.code)) return `error.code ${JSON.stringify(error.code)} is not an integer`;
  if (typeof error.message !== "string") return "error.message is not a string";
  const extraInError = Object.keys(error).filter((k) => !["code", "message", "data"].includes(k));
  if (extraInError.length > 0) return `unexpected member(s) of error: ${extraInError.join(", ")}`;
  return undefined;
}

/** A reply's code: its error code, or "ok" for a result. Only call on a value responseProblem accepted. */
export function replyCode(reply: Record<string, unknown>): string {
  const error = reply.error as { code: number } | undefined;
  return error === undefined ? "ok" : String(error.code);
}

/** Why a reply's code does not fit what was expected, or undefined when it does. -32603 (internal error) never fits. */
export function codeProblem(expected: ExpectedCode, code: string): string | undefined {
  if (code === "-32603") return "internal error -32603 (the service logged an unhandled exception)";
  if (expected === "parse" && code !== "-32700") return `expected -32700 (parse error), got ${code}`;
  if (expected === "invalid" && code !== "-32600") return `expected -32600 (invalid request), got ${code}`;
  if (expected === "any" && (code === "-32700" || code === "-32600")) return `a valid request answered ${code}`;
  return undefined;
}
