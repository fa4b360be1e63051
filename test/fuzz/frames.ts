/**
 * The fuzzer's frames, by family: valid requests (the baseline that builds state), and
 * invalid JSON, wrong types, extreme numbers, NaN/Infinity tokens, deep nesting, long
 * strings, unknown methods, batches, notifications, binary and oversized frames, and the
 * frames that raw sockets write by hand in pieces. Frame i depends only on (seed, i, total).
 *
 * Names, steps and replacement values come from small fixed pools, so that however many
 * frames are sent, the state the service may legitimately keep (studies, trials, steps)
 * stays bounded: growing memory then means a leak, not more data.
 */
import { Random } from "./random.js";
import { OPCODE, encodeFrame } from "./ws-wire.js";
import { RawJson, copyJson, isFuzzObject, nestedText, slotsOf, toJsonText, type FuzzJson, type FuzzObject } from "./json-text.js";

export const FAMILIES = [
  "valid",
  "wrong-types",
  "numbers",
  "non-finite-tokens",
  "truncated-json",
  "random-bytes",
  "random-unicode",
  "deep-nesting",
  "long-strings",
  "unknown-methods",
  "batches",
  "notifications",
  "binary",
  "oversized",
  "split-writes",
  "protocol-violations",
] as const;
export type Family = (typeof FAMILIES)[number];

/** How often each family is chosen (per mille, roughly). */
const FAMILY_WEIGHTS: readonly (readonly [Family, number])[] = [
  ["valid", 150],
  ["wrong-types", 200],
  ["numbers", 100],
  ["non-finite-tokens", 80],
  ["truncated-json", 60],
  ["random-bytes", 40],
  ["random-unicode", 40],
  ["deep-nesting", 20],
  ["long-strings", 30],
  ["unknown-methods", 40],
  ["batches", 60],
  ["notifications", 40],
  ["binary", 20],
  ["oversized", 1],
  ["split-writes", 60],
  ["protocol-violations", 3],
];

export interface FuzzFrame {
  index: number;
  family: Family;
  /** A text frame, or the bytes of a binary one (of a protocol violation: the bytes on the wire). */
  data: string | Buffer;
  binary: boolean;
  /** The code the service must close the connection with after this frame (oversized, protocol violations). */
  closeCode?: number;
}

export interface FrameSpace {
  seed: number;
  /** Frames in the run: steps of valid reports grow with index / total, so that most are accepted. */
  total: number;
  /** The service's --max-payload: oversized frames are just above it. */
  maxPayload: number;
}

const STUDIES = ["fuzz-a", "fuzz-b", "fuzz-c", "fuzz-d"];
const TRIALS = Array.from({ length: 32 }, (_, i) => `t${i}`);
const MAX_STEP = 64;
const METHODS = [
  "study.open",
  "study.list",
  "study.trials",
  "trial.report",
  "trial.assess",
  "trial.reportAndAssess",
  "trial.end",
  "trial.history",
  "service.health",
] as const;
const LAYER_FIELDS = ["grad_abs_mean", "grad_zero_frac", "grad_abs_max", "weight_abs_mean", "update_ratio", "act_zero_frac", "act_saturated_frac", "bias_grad_zero_frac"];
const METRICS = ["train_loss", "val_loss", "train_acc", "val_acc"];

/** Extreme numbers as JSON text: what JSON.stringify never writes, and what the service must survive in any field. */
const EXTREME_NUMBERS = [
  "1e308",
  "-1e308",
  "5e-324",
  "-5e-324",
  "1e400",
  "-1e400",
  "-0",
  "0.0",
  "-0.0e0",
  "9007199254740993",
  "18446744073709551616",
  "-9223372036854775809",
  "123456789012345678901234567890",
  "1.7976931348623157e308",
  "2.2250738585072014e-308",
  "0.1e-999",
  "1E+2",
  "4294967296",
  "2147483648",
  "-1",
  "1.5",
];
const NON_FINITE_TOKENS = ["NaN", "Infinity", "-Infinity"];

/** The replacement values of the wrong-types family: every JSON type, and strings from a fixed set. */
const REPLACEMENTS: readonly FuzzJson[] = [
  null,
  true,
  false,
  0,
  -1,
  1.5,
  1e21,
  "",
  "x",
  "0",
  "null",
  "complete",
  "\u0000",
  "é\u{1F600}",
  "a".repeat(257),
  "b".repeat(256),
  [],
  [1, 2],
  [null],
  [[]],
  {},
  { a: 1 },
  { step: 0 },
  new RawJson("NaN"),
  new RawJson("1e400"),
];

/** The family of frame i (the first draw of its generator). */
export function familyOf(space: FrameSpace, index: number): Family {
  return Random.forFrame(space.seed, index).weighted(FAMILY_WEIGHTS);
}

/** Frame i of the run. */
export function frameAt(space: FrameSpace, index: number): FuzzFrame {
  const rng = Random.forFrame(space.seed, index);
  const family = rng.weighted(FAMILY_WEIGHTS);
  const ctx: FrameContext = { rng, index, space };
  if (family === "binary") return { index, family, data: binaryBody(ctx), binary: true };
  if (family === "oversized") return { index, family, data: oversized(ctx), binary: false, closeCode: 1009 };
  if (family === "protocol-violations") return { index, family, ...protocolViolation(ctx), binary: false };
  if (family === "split-writes") {
    // a small frame of another family, written by hand in pieces: binary sometimes, text mostly
    if (rng.chance(0.05)) return { index, family, data: binaryBody(ctx), binary: true };
    return { index, family, data: asSent(rng.pick(SMALL_TEXT_BUILDERS)(ctx)), binary: false };
  }
  return { index, family, data: asSent(TEXT_BUILDERS[family](ctx)), binary: false };
}

/** The text as the service will read it: a lone surrogate (a cut through an emoji) goes out as U+FFFD. */
function asSent(text: string): string {
  return /[\ud800-\udfff]/.test(text) ? Buffer.from(text, "utf8").toString("utf8") : text;
}

interface FrameContext {
  rng: Random;
  index: number;
  space: FrameSpace;
}

/* ------------------------------------------------------------- valid requests */

function step(ctx: FrameContext): number {
  const base = Math.floor((ctx.index / Math.max(1, ctx.space.total)) * MAX_STEP);
  return Math.max(0, Math.min(MAX_STEP - 1, base + ctx.rng.int(-2, 1)));
}

function metricValue(rng: Random, name: string): number {
  return name.endsWith("acc") ? rng.float() : rng.chance(0.05) ? 1e6 * rng.float() : 3 * rng.float();
}

function payload(ctx: FrameContext): FuzzObject {
  const { rng } = ctx;
  const metrics: FuzzObject = {};
  for (const name of METRICS) if (rng.chance(0.8)) metrics[name] = rng.chance(0.02) ? null : metricValue(rng, name);
  const layers = Array.from({ length: rng.int(0, 10) }, (_, i): FuzzJson => {
    const layer: FuzzObject = { name: `dense_${i}` };
    for (const f of LAYER_FIELDS) if (rng.chance(0.7)) layer[f] = f.endsWith("frac") ? rng.float() : 10 ** rng.int(-9, 2) * rng.float();
    return layer;
  });
  const out: FuzzObject = { step: step(ctx), metrics, layers };
  if (rng.chance(0.7)) out.max_steps = rng.pick([20, 40, 64, 100]);
  if (rng.chance(0.5)) out.non_finite = rng.chance(0.03);
  if (rng.chance(0.5)) out.seconds = rng.float() * 5;
  return out;
}

function paramsFor(ctx: FrameContext, method: (typeof METHODS)[number]): FuzzObject | undefined {
  const { rng } = ctx;
  const study = rng.pick(STUDIES);
  const trial = rng.pick(TRIALS);
  switch (method) {
    case "study.open":
      return rng.chance(0.5) ? { study } : { study, config: copyJson(rng.pick<FuzzObject>([{}, { max_steps: 20 }, { max_steps: 64 }])) };
    case "study.list":
    case "service.health":
      return rng.chance(0.5) ? undefined : {};
    case "study.trials":
      return { study };
    case "trial.report":
    case "trial.reportAndAssess":
      return { study, trial, payload: payload(ctx) };
    case "trial.assess":
      return rng.chance(0.5) ? { study, trial } : { study, trial, step: step(ctx) };
    case "trial.end":
      return { study, trial, state: rng.pick(["complete", "pruned", "failed"]) };
    case "trial.history":
      return { study, trial };
  }
}

/** A valid request; reports and assessments are the most frequent, as in real studies. */
function validRequest(ctx: FrameContext, id: FuzzJson | undefined = requestId(ctx)): FuzzObject {
  const method = ctx.rng.weighted<(typeof METHODS)[number]>([
    ["trial.reportAndAssess", 40],
    ["trial.report", 15],
    ["trial.assess", 10],
    ["trial.history", 6],
    ["study.open", 6],
    ["study.trials", 5],
    ["study.list", 4],
    ["service.health", 4],
    ["trial.end", 1],
  ]);
  const params = paramsFor(ctx, method);
  const request: FuzzObject = { jsonrpc: "2.0" };
  if (id !== undefined) request.id = id;
  request.method = method;
  if (params !== undefined) request.params = params;
  return request;
}

/** A unique id for frame i: a number or a string. */
function requestId(ctx: FrameContext, member?: number): FuzzJson {
  const suffix = member === undefined ? "" : `.${member}`;
  if (ctx.rng.chance(0.5)) return member === undefined ? ctx.index + 1 : (ctx.index + 1) * 10_000 + member;
  return `f${ctx.index}${suffix}`;
}

/* ------------------------------------------------------------- mutations */

/** Deletes or replaces 1-3 fields anywhere in the request (id, jsonrpc, method, params and everything inside). */
function wrongTypes(ctx: FrameContext): string {
  const request = validRequest(ctx);
  const mutations = ctx.rng.int(1, 3);
  for (let i = 0; i < mutations; i++) {
    const slots = slotsOf(request);
    if (slots.length === 0) break;
    const [parent, key] = ctx.rng.pick(slots);
    const replacement = copyJson(ctx.rng.pick(REPLACEMENTS));
    if (Array.isArray(parent)) {
      if (ctx.rng.chance(0.3)) parent.splice(key as number, 1);
      else parent[key as number] = replacement;
    } else if (ctx.rng.chance(0.3)) {
      delete parent[key as string];
    } else {
      parent[key as string] = replacement;
    }
  }
  return toJsonText(request);
}

/** Numeric slots (numbers anywhere, the id included) replaced by extreme number texts; big steps in particular. */
function extremeNumbers(ctx: FrameContext, tokens: readonly string[]): string {
  const request = validRequest(ctx);
  const numeric = slotsOf(request).filter(([parent, key]) => typeof (parent as Record<string | number, FuzzJson>)[key] === "number");
  const count = numeric.length === 0 ? 0 : ctx.rng.int(1, Math.min(4, numeric.length));
  for (let i = 0; i < count; i++) {
    const [parent, key] = ctx.rng.pick(numeric);
    (parent as Record<string | number, FuzzJson>)[key] = new RawJson(ctx.rng.pick(tokens));
  }
  if (numeric.length === 0 && isFuzzObject(request.params)) request.params.step = new RawJson(ctx.rng.pick(tokens));
  return toJsonText(request);
}

/** Steps that no trial reaches: huge integers, beyond 2^53, beyond a double. */
const EXTREME_STEPS = ["9007199254740991", "9007199254740993", "1e308", "1e400", "-0", "-1", "5e-324", "18446744073709551616", "123456789012345678901234567890", "0.5", "1e20"];

function numbers(ctx: FrameContext): string {
  if (ctx.rng.chance(0.7)) return extremeNumbers(ctx, EXTREME_NUMBERS);
  // the step itself: of a report's payload, or of trial.assess
  const request = validRequest(ctx);
  const params = isFuzzObject(request.params) ? request.params : (request.params = { study: "fuzz-a", trial: "t0" });
  const target = isFuzzObject(params.payload) ? params.payload : params;
  target.step = new RawJson(ctx.rng.pick(EXTREME_STEPS));
  return toJsonText(request);
}

/** NaN/Infinity/-Infinity tokens where numbers were, plus the same words inside strings and glued to other words. */
function nonFiniteTokens(ctx: FrameContext): string {
  const text = extremeNumbers(ctx, NON_FINITE_TOKENS);
  if (!ctx.rng.chance(0.3)) return text;
  const junk = ctx.rng.pick(["NaNa", "Infinityy", "-Infinity1", '"NaN"', "nan", "+Infinity", "- Infinity", "NaN NaN", "\"In\\\"finity\""]);
  return text.replace(/:(-?\d[\d.eE+-]*)/, `:${junk}`);
}

function truncated(ctx: FrameContext): string {
  const text = toJsonText(ctx.rng.chance(0.2) ? batchOf(ctx, ctx.rng.int(1, 5)) : validRequest(ctx));
  return text.slice(0, ctx.rng.int(0, text.length - 1));
}

function randomBytes(ctx: FrameContext): string {
  // decoded as UTF-8 (invalid sequences become U+FFFD): the frame is valid text, its content is noise
  const bytes = ctx.rng.bytes(ctx.rng.int(1, 256));
  if (ctx.rng.chance(0.3)) bytes[0] = ctx.rng.pick([0x7b, 0x5b, 0x22]); // { [ "
  return bytes.toString("utf8");
}

function randomUnicode(ctx: FrameContext): string {
  const { rng } = ctx;
  let out = "";
  const n = rng.int(1, 128);
  for (let i = 0; i < n; i++) {
    const kind = rng.int(0, 4);
    if (kind === 0) out += String.fromCharCode(rng.int(0, 0x7f));
    else if (kind === 1) out += String.fromCharCode(rng.int(0x80, 0xd7ff));
    else if (kind === 2) out += String.fromCodePoint(rng.int(0x10000, 0x10ffff));
    else if (kind === 3) out += rng.pick(["{", "}", "[", "]", '"', ":", ",", "\\", "\\u", "\u2028", "\ufeff", "\u0000"]);
    else out += String.fromCharCode(rng.int(0xe000, 0xfffd));
  }
  return out;
}

/** Thousands of nested arrays/objects: as the whole frame, as params, inside a payload, as the id; balanced or not. */
function deepNesting(ctx: FrameContext): string {
  const { rng } = ctx;
  const depth = rng.int(65, 20_000);
  const kind = rng.pick(["array", "object", "mixed"] as const);
  const unbalanced = rng.chance(0.15);
  const nested = new RawJson(nestedText(depth, kind, rng.pick(["1", "null", '"x"', "NaN", "{}", "[]"]), unbalanced));
  const where = rng.int(0, 4);
  if (where === 0) return nested.text;
  const request = validRequest(ctx);
  if (where === 1) request.params = nested;
  else if (where === 2) request.id = nested;
  else if (where === 3 && isFuzzObject(request.params)) request.params[rng.pick(["payload", "config", "study", "extra"])] = nested;
  else if (isFuzzObject(request.params) && isFuzzObject(request.params.payload)) request.params.payload.metrics = { train_loss: nested };
  else request.params = { study: "fuzz-a", config: nested };
  return toJsonText(request);
}

/** Strings over and at the schema's limits, in names, methods, ids, metric keys; rarely hundreds of kilobytes. */
function longStrings(ctx: FrameContext): string {
  const { rng } = ctx;
  // at most 140,000 characters of at most 6 bytes each (\u0000 escaped): always under the default 1 MiB limit
  const length = rng.chance(0.02) ? rng.int(50_000, 140_000) : rng.pick([255, 256, 257, 1000, rng.int(1, 20_000)]);
  const long = rng.pick(["a", "é", "\u{1F600}", "\\", '"', "\u0000"]).repeat(length);
  const request = validRequest(ctx);
  const params = isFuzzObject(request.params) ? request.params : (request.params = {});
  switch (rng.int(0, 5)) {
    case 0:
      params.study = long;
      break;
    case 1:
      params.trial = long;
      break;
    case 2:
      request.method = long;
      break;
    case 3:
      request.id = `${ctx.index}:${long}`;
      break;
    case 4:
      if (isFuzzObject(params.payload)) params.payload.metrics = { [long.slice(0, rng.pick([128, 129, 4000]))]: 1 };
      else params.extra = long;
      break;
    default:
      if (isFuzzObject(params.payload) && Array.isArray(params.payload.layers)) params.payload.layers.push({ name: long });
      else params.study = long;
  }
  return toJsonText(request);
}

function unknownMethods(ctx: FrameContext): string {
  const { rng } = ctx;
  const method = rng.pick([
    "",
    " ",
    "trial",
    "trial.",
    ".report",
    "Trial.Report",
    "trial.report ",
    "trial.reportandassess",
    "rpc.discover",
    "rpc.ping",
    "__proto__",
    "constructor",
    "toString",
    "hasOwnProperty",
    "valueOf",
    "study.open.extra",
    "service.shutdown",
    "service.health\u0000",
    "\u{1F600}",
    `m${rng.int(0, 1e9)}`,
  ]);
  const request: FuzzObject = { jsonrpc: "2.0", id: requestId(ctx), method };
  if (rng.chance(0.5)) request.params = copyJson(rng.pick<FuzzJson>([{}, [], { study: "fuzz-a" }, [1, 2, 3]]));
  return toJsonText(request);
}

/** One member of a batch: a valid request or notification, a mutated one, or something that is no request at all. */
function batchMember(ctx: FrameContext, member: number): FuzzJson {
  const { rng } = ctx;
  const kind = rng.int(0, 5);
  if (kind <= 1) return validRequest(ctx, requestId(ctx, member));
  if (kind === 2) return validRequest(ctx, undefined);
  if (kind === 3) return copyJson(rng.pick<FuzzJson>([1, "x", null, [], [1], true, {}]));
  const request = validRequest(ctx, requestId(ctx, member));
  const field = rng.pick(["jsonrpc", "method", "params", "id"]);
  request[field] = copyJson(rng.pick(REPLACEMENTS));
  return request;
}

function batchOf(ctx: FrameContext, size: number): FuzzJson[] {
  return Array.from({ length: size }, (_, member) => batchMember(ctx, member));
}

function batches(ctx: FrameContext): string {
  const { rng } = ctx;
  switch (rng.int(0, 9)) {
    case 0:
      return rng.pick(["[]", "[ ]", "[[]]", "[[],[]]"]);
    case 1: {
      // over the limit of 1,000 requests: refused whole, with one error
      const size = rng.int(1001, 1200);
      const member = rng.pick(['{"jsonrpc":"2.0","method":"service.health"}', "1", '{"jsonrpc":"2.0","id":1,"method":"study.list"}']);
      return `[${Array(size).fill(member).join(",")}]`;
    }
    case 2:
      // notifications only: no reply at all
      return toJsonText(Array.from({ length: rng.int(1, 8) }, () => validRequest(ctx, undefined)));
    case 3:
      // exactly at the limit (of a cheap method: 1,000 service.health calls cost the service ~200 ms, see docs/reliability.md)
      return `[${Array.from({ length: 1000 }, (_, j) => `{"jsonrpc":"2.0","id":"f${ctx.index}.${j}","method":"trial.assess","params":{"study":"fuzz-a","trial":"t${j % 40}"}}`).join(",")}]`;
    default:
      return toJsonText(batchOf(ctx, rng.int(1, 40)));
  }
}

function notifications(ctx: FrameContext): string {
  const request = validRequest(ctx, undefined);
  // sometimes a notification that is not a valid request: it gets an invalid-request reply with id null
  if (ctx.rng.chance(0.2)) request.jsonrpc = ctx.rng.pick<FuzzJson>(["1.0", 2, null]);
  return toJsonText(request);
}

/** Just over the service's limit: a valid request carrying a long string. */
function oversized(ctx: FrameContext): string {
  const head = `{"jsonrpc":"2.0","id":${ctx.index + 1},"method":"study.open","params":{"study":"`;
  const tail = '"}}';
  const size = ctx.space.maxPayload + ctx.rng.int(1, 64 * 1024);
  return head + "o".repeat(size - head.length - tail.length) + tail;
}

/** Frames RFC 6455 forbids, as wire bytes, and the close code the `ws` server answers each with. */
function protocolViolation(ctx: FrameContext): { data: Buffer; closeCode: number } {
  const text = Buffer.from(valid(ctx), "utf8");
  const half = Math.floor(text.length / 2);
  const violations: [() => Buffer, number][] = [
    [() => encodeFrame(true, OPCODE.text, Buffer.concat([text.subarray(0, half), Buffer.from([0xc3, 0x28, 0xff]), text.subarray(half)])), 1007], // invalid UTF-8
    [() => encodeFrame(true, OPCODE.text, text, { masked: false }), 1002], // a client frame must be masked
    [() => encodeFrame(true, OPCODE.text, text, { rsv1: true }), 1002], // RSV1 without a negotiated extension
    [() => encodeFrame(true, ctx.rng.pick([0x3, 0x4, 0x7, 0xb, 0xf]), text), 1002], // reserved opcode
    [() => encodeFrame(true, OPCODE.ping, Buffer.alloc(126, 0x70)), 1002], // control frame over 125 bytes
    [() => encodeFrame(false, OPCODE.ping, Buffer.from("p")), 1002], // fragmented control frame
    [() => encodeFrame(true, OPCODE.continuation, text), 1002], // continuation of nothing
    [() => Buffer.concat([encodeFrame(false, OPCODE.text, text.subarray(0, half)), encodeFrame(true, OPCODE.text, text.subarray(half))]), 1002], // new message inside a fragmented one
  ];
  const [build, closeCode] = ctx.rng.pick(violations);
  return { data: build(), closeCode };
}

function binaryBody(ctx: FrameContext): Buffer {
  return ctx.rng.chance(0.5) ? Buffer.from(toJsonText(validRequest(ctx)), "utf8") : ctx.rng.bytes(ctx.rng.int(0, 512));
}

function valid(ctx: FrameContext): string {
  return toJsonText(validRequest(ctx));
}

type TextBuilder = (ctx: FrameContext) => string;

const TEXT_BUILDERS: Record<Exclude<Family, "binary" | "split-writes" | "oversized" | "protocol-violations">, TextBuilder> = {
  valid,
  "wrong-types": wrongTypes,
  numbers,
  "non-finite-tokens": nonFiniteTokens,
  "truncated-json": truncated,
  "random-bytes": randomBytes,
  "random-unicode": randomUnicode,
  "deep-nesting": deepNesting,
  "long-strings": longStrings,
  "unknown-methods": unknownMethods,
  batches,
  notifications,
};

/** What raw sockets write in pieces: frames of a few kilobytes at most. */
const SMALL_TEXT_BUILDERS: readonly TextBuilder[] = [
  valid,
  valid,
  wrongTypes,
  numbers,
  nonFiniteTokens,
  truncated,
  randomUnicode,
  unknownMethods,
  notifications,
  (ctx) => toJsonText(batchOf(ctx, ctx.rng.int(1, 6))),
];
