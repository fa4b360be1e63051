/**
 * Validation against the JSON Schemas in `schemas/` (the one contract that
 * TypeScript, Python and the tests share), with errors that name the field, the
 * value and what was expected.
 */
import { AUTO, inferDirection, OBJECTIVE } from "../diagnosis/objective.js";
import { readFileSync } from "node:fs";
import { Ajv, type ErrorObject, type ValidateFunction } from "ajv";
import type { PayloadV1, StudyConfig, TrialEndState } from "../diagnosis/types.js";
import { MAX_NESTING, NestingError, nonFiniteToNull as toNullOrThrow } from "./json.js";

/** nonFiniteToNull, with too deep a nesting reported like any other schema violation. */
function nonFiniteToNull(value: unknown, root: string): unknown {
  try {
    return toNullOrThrow(value);
  } catch (err) {
    if (err instanceof NestingError) {
      throw new ValidationError([{ path: root, value: "(too deep to show)", expected: `at most ${MAX_NESTING} levels of nested arrays and objects` }]);
    }
    throw err;
  }
}

const SCHEMA_DIR = new URL("../../schemas/", import.meta.url);

function loadSchema(file: string): Record<string, unknown> {
  return JSON.parse(readFileSync(new URL(file, SCHEMA_DIR), "utf8")) as Record<string, unknown>;
}

export const payloadSchema = loadSchema("payload.v1.json");
export const configSchema = loadSchema("config.v1.json");
export const replayEventSchema = loadSchema("replay-event.v1.json");
export const rpcSchema = loadSchema("rpc.v1.json");

/** The service's method names, as schemas/rpc.v1.json defines them. */
export const RPC_METHODS: readonly string[] = Object.keys(rpcSchema.definitions as Record<string, unknown>);

/** One thing wrong with a document. `path` is dotted, e.g. `payload.layers[0].grad_abs_mean`. */
export interface ValidationIssue {
  path: string;
  value: unknown;
  expected: string;
}

export class ValidationError extends Error {
  override readonly name = "ValidationError";
  constructor(readonly issues: ValidationIssue[]) {
    super(issues.map(formatIssue).join("; "));
  }
}

export function formatIssue(issue: ValidationIssue): string {
  const got = issue.value === undefined ? "nothing" : preview(issue.value);
  return `${issue.path}: got ${got}, expected ${issue.expected}`;
}

function preview(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

const strictAjv = new Ajv({ allErrors: true, verbose: true, strict: true });
strictAjv.addSchema(payloadSchema);
strictAjv.addSchema(rpcSchema);
const checkPayload = strictAjv.compile(payloadSchema);
const checkEvent = strictAjv.compile(replayEventSchema);
const defaultingAjv = new Ajv({ allErrors: true, verbose: true, strict: true, useDefaults: true });
const checkConfig = defaultingAjv.compile(configSchema);
/** The params validator of each service method, looked up once. */
const rpcValidators = new Map<string, ValidateFunction>();

/** Turns a JSON pointer into a dotted path under `root`: /layers/0/name -> root.layers[0].name */
function dotted(root: string, pointer: string): string {
  let out = root;
  for (const raw of pointer.split("/").slice(1)) {
    const part = raw.replace(/~1/g, "/").replace(/~0/g, "~");
    out += /^\d+$/.test(part) ? `[${part}]` : /^[A-Za-z_][A-Za-z0-9_]*$/.test(part) ? `.${part}` : `[${JSON.stringify(part)}]`;
  }
  return out;
}

function describeTypes(t: unknown): string {
  const list = Array.isArray(t) ? t : [t];
  return list.map((x) => (x === "integer" ? "an integer" : x === "null" ? "null" : `a ${String(x)}`)).join(" or ");
}

function expectation(e: ErrorObject): string {
  const p = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case "type":
      return describeTypes(p.type);
    case "minimum":
    case "maximum":
    case "exclusiveMinimum":
    case "exclusiveMaximum":
      return `a number ${String(p.comparison)} ${String(p.limit)}`;
    case "enum":
      return `one of ${(p.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(", ")}`;
    case "minLength":
      return `a string of at least ${String(p.limit)} characters`;
    case "maxLength":
      return `a string of at most ${String(p.limit)} characters`;
    case "maxItems":
      return `at most ${String(p.limit)} items`;
    case "maxProperties":
      return `at most ${String(p.limit)} entries`;
    default:
      return e.message ?? e.keyword;
  }
}

/** Ajv's errors as issues: one per field, the `anyOf` branches of a field merged into one expectation. */
function toIssues(root: string, errors: ErrorObject[] | null | undefined): ValidationIssue[] {
  const byPath = new Map<string, { value: unknown; types: string[]; other: string[] }>();
  const issues: ValidationIssue[] = [];
  for (const e of errors ?? []) {
    const p = e.params as Record<string, unknown>;
    if (e.keyword === "required") {
      issues.push({ path: dotted(root, `${e.instancePath}/${String(p.missingProperty)}`), value: undefined, expected: "a required field" });
      continue;
    }
    if (e.keyword === "additionalProperties") {
      issues.push({
        path: dotted(root, `${e.instancePath}/${String(p.additionalProperty)}`),
        value: (e.data as Record<string, unknown>)[String(p.additionalProperty)],
        expected: "no such field (unknown fields are not allowed here)",
      });
      continue;
    }
    if (e.keyword === "anyOf" || e.keyword === "propertyNames") continue;
    const path = dotted(root, e.instancePath);
    const entry = byPath.get(path) ?? { value: e.data, types: [], other: [] };
    byPath.set(path, entry);
    if (e.keyword === "type") entry.types.push(describeTypes(p.type));
    else entry.other.push(expectation(e));
  }
  for (const [path, { value, types, other }] of byPath) {
    issues.push({ path, value, expected: other.length > 0 ? other.join(" and ") : types.join(" or ") });
  }
  return issues;
}

function check<T>(validate: ValidateFunction, root: string, value: unknown): T {
  if (!validate(value)) throw new ValidationError(toIssues(root, validate.errors));
  return value as T;
}

/**
 * Validates a payload against payload.v1. Non-finite numbers (NaN, ±Infinity) are
 * accepted and turned into null, as JSON would carry them (in a copy; the input is never modified).
 */
export function validatePayload(value: unknown, root = "payload"): PayloadV1 {
  return check<PayloadV1>(checkPayload, root, nonFiniteToNull(value, root));
}

/**
 * Validates the params of a service method (schemas/rpc.v1.json); absent params
 * count as `{}`. Non-finite numbers become null (in a copy; the input is never modified).
 */
export function validateRpcParams<T>(method: string, params: unknown): T {
  let validate = rpcValidators.get(method);
  if (validate === undefined) {
    validate = strictAjv.getSchema(`urn:bttackler:schema:rpc.v1#/definitions/${method}`);
    if (validate === undefined) throw new Error(`no schema for method ${method}`);
    rpcValidators.set(method, validate);
  }
  return check<T>(validate, "params", nonFiniteToNull(params ?? {}, "params"));
}

export type ReplayEvent =
  | { study: string; trial: string; payload: PayloadV1 }
  | { study: string; trial: string; end: { state: TrialEndState } };

/** Validates one `bttackler replay` input line (already parsed). */
export function validateReplayEvent(value: unknown): ReplayEvent {
  const event = check<Record<string, unknown>>(checkEvent, "event", nonFiniteToNull(value, "event"));
  const has = (k: string): boolean => Object.prototype.hasOwnProperty.call(event, k);
  if (has("payload") === has("end")) {
    throw new ValidationError([{ path: "event", value: Object.keys(event), expected: "exactly one of the fields payload and end" }]);
  }
  return event as ReplayEvent;
}

/**
 * Validates a (partial) study configuration against config.v1 and fills in every
 * default. `undefined`/`null` give the default configuration. The input is not modified.
 */
export function resolveConfig(value: unknown = {}, root = "config"): StudyConfig {
  const copy = structuredClone(value ?? {});
  const config = check<StudyConfig>(checkConfig, root, copy);
  const issues: ValidationIssue[] = [];
  for (const [code, rule] of Object.entries(config.rules)) {
    if (rule.stage.start >= rule.stage.end) {
      issues.push({
        path: `${root}.rules.${code}.stage`,
        value: rule.stage,
        expected: "start < end",
      });
    }
  }
  const { objective } = config;
  if (objective.metric !== AUTO && objective.direction === "auto" && inferDirection(objective.metric) === undefined) {
    issues.push({ path: `${root}.objective.direction`, value: objective.direction, expected: `minimize or maximize: the name ${JSON.stringify(objective.metric)} does not say which` });
  }
  const lag = config.rules.LAG;
  if (lag.metric !== OBJECTIVE && lag.direction === "auto" && inferDirection(lag.metric) === undefined) {
    issues.push({ path: `${root}.rules.LAG.direction`, value: lag.direction, expected: `minimize or maximize: the name ${JSON.stringify(lag.metric)} does not say which` });
  }
  if (issues.length > 0) throw new ValidationError(issues);
  return config;
}

/** The default study configuration (a fresh object). */
export function defaultConfig(): StudyConfig {
  return resolveConfig({});
}
