/**
 * The service's JSON-RPC 2.0 methods, apart from any transport: `handleText` takes
 * one frame of JSON text and resolves to the reply text (null for notifications).
 * The WebSocket and stdio transports both call it, so they speak the same protocol.
 *
 * Methods (params in schemas/rpc.v1.json, results in docs/protocol.md):
 *   study.open, study.list, study.trials, trial.report, trial.assess,
 *   trial.reportAndAssess, trial.end, trial.history, service.health
 */
import {
  JSONRPCErrorException,
  JSONRPCServer,
  createJSONRPCErrorResponse,
  type JSONRPCRequest,
  type JSONRPCResponse,
} from "json-rpc-2.0";
import type { PayloadV1, TrialEndState } from "../diagnosis/types.js";
import { isPlainObject, JsonSyntaxError, parseJson } from "../schema/json.js";
import { RPC_METHODS, ValidationError, validateRpcParams } from "../schema/validate.js";
import { RpcErrorCode } from "./errors.js";
import type { Log } from "./log.js";
import type { StudyRegistry } from "./study-registry.js";

export interface ServiceInfo {
  version: string;
  db: string;
  /** Milliseconds, on the clock of `now`. */
  startedAt: number;
  /** A millisecond clock (performance.now in the service). */
  now: () => number;
  /** Process figures for service.health (event-loop delay, memory), when the host provides them. */
  runtime?: () => Record<string, unknown>;
}

export interface RpcHandlerOptions {
  /** Most requests in one batch. */
  maxBatch?: number;
}

type Params = Record<string, unknown>;

interface ReportParams {
  study: string;
  trial: string;
  payload: PayloadV1;
}

/**
 * The params' payload, which the params then no longer hold. json-rpc-2.0 keeps the
 * request until its reply is sent, and the reply waits for the commit: without this the
 * parsed payload (dozens of objects) would outlive young-generation collections while
 * nothing needs it any more, since the engine takes what it keeps as soon as it is given
 * the payload. The params are this request's own, parsed from its frame (when validation
 * had to copy them to replace non-finite numbers, the request keeps the original: rare).
 */
function takePayload(p: ReportParams): PayloadV1 {
  const payload = p.payload;
  (p as Partial<ReportParams>).payload = undefined;
  return payload;
}

/** What a method knows of the frame it came in: its text, when the frame held this one request only. */
interface FrameContext {
  text?: string;
}

interface LatencySummary {
  frames: number;
  p50_ms: number;
  p99_ms: number;
  max_ms: number;
}

/** Handling times of the most recent frames (parse to reply, commit wait included), for service.health. */
class LatencyWindow {
  private readonly ms = new Float64Array(1024);
  private count = 0;

  add(ms: number): void {
    this.ms[this.count++ % this.ms.length] = ms;
  }

  /** The last summary and the frame count it was made at: a burst of health calls (a batch) sorts once. */
  private cached: { count: number; summary: LatencySummary } | undefined;

  summary(): LatencySummary {
    if (this.cached?.count !== this.count) this.cached = { count: this.count, summary: this.compute() };
    return this.cached.summary;
  }

  private compute(): LatencySummary {
    const n = Math.min(this.count, this.ms.length);
    const sorted = Array.from(this.ms.subarray(0, n)).sort((a, b) => a - b);
    const at = (q: number): number => Number((sorted[Math.min(n - 1, Math.floor(q * n))] ?? 0).toFixed(3));
    return { frames: n, p50_ms: at(0.5), p99_ms: at(0.99), max_ms: at(1) };
  }
}

export class RpcHandler {
  private readonly server: JSONRPCServer<FrameContext>;
  private readonly maxBatch: number;
  private readonly latency = new LatencyWindow();

  constructor(
    private readonly registry: StudyRegistry,
    private readonly info: ServiceInfo,
    private readonly log: Log,
    options: RpcHandlerOptions = {},
  ) {
    this.maxBatch = options.maxBatch ?? 1000;
    // The listener hears every error a method throws, a notification's too (json-rpc-2.0 maps
    // only those of requests to a reply): an unexpected one is logged here, once, either way.
    this.server = new JSONRPCServer<FrameContext>({
      errorListener: (_message: string, error: unknown) => {
        if (error instanceof JSONRPCErrorException) return;
        this.log.error("internal error", { error: error instanceof Error ? (error.stack ?? error.message) : String(error) });
      },
    });
    this.server.mapErrorToJSONRPCErrorResponse = (id, error: unknown) => {
      if (error instanceof JSONRPCErrorException) return createJSONRPCErrorResponse(id, error.code, error.message, error.data);
      return createJSONRPCErrorResponse(id, RpcErrorCode.InternalError, "internal error");
    };
    this.define();
  }

  /** One frame in, the reply frame out (null when nothing is to be sent back). */
  handleText(text: string): Promise<string | null> {
    const started = this.info.now();
    const done = (): void => this.latency.add(this.info.now() - started);
    let reply: Promise<string | null>;
    try {
      reply = this.answer(text);
    } catch (err) {
      done();
      return Promise.reject(err);
    }
    reply.then(done, done);
    return reply;
  }

  /** Not async on purpose: no suspended frame keeps the parsed message while the reply is pending. */
  private answer(text: string): Promise<string | null> {
    let message: unknown;
    try {
      message = parseJson(text);
    } catch (err) {
      if (!(err instanceof JsonSyntaxError)) throw err;
      return Promise.resolve(JSON.stringify(createJSONRPCErrorResponse(null, RpcErrorCode.ParseError, `parse error: ${err.message}`)));
    }
    if (Array.isArray(message)) {
      if (message.length === 0) return Promise.resolve(JSON.stringify(invalid(null, "an empty batch is not a request")));
      if (message.length > this.maxBatch) {
        return Promise.resolve(JSON.stringify(invalid(null, `a batch holds at most ${this.maxBatch} requests, got ${message.length}`)));
      }
      return Promise.all(message.map((m) => this.handleOne(m, {}))).then((all) => {
        const replies = all.filter((r) => r !== null);
        return replies.length > 0 ? `[${replies.map(replyText).join(",")}]` : null;
      });
    }
    return this.handleOne(message, { text }).then((reply) => (reply === null ? null : replyText(reply)));
  }

  /** A reply for a frame the transport refused before parsing (binary, too large). */
  static refusal(reason: string): string {
    return JSON.stringify(invalid(null, reason));
  }

  private async handleOne(message: unknown, frame: FrameContext): Promise<JSONRPCResponse | null> {
    const problem = requestProblem(message);
    if (problem !== undefined) {
      const id = (message as { id?: unknown } | null)?.id;
      return invalid(typeof id === "string" || typeof id === "number" ? id : null, problem);
    }
    return this.server.receive(message as JSONRPCRequest, frame);
  }

  private method<P>(name: string, run: (params: P, frame: FrameContext) => unknown): void {
    if (!RPC_METHODS.includes(name)) throw new Error(`method ${name} has no schema in schemas/rpc.v1.json`);
    this.server.addMethod(name, (raw: unknown, frame: FrameContext) => {
      let params: P;
      try {
        params = validateRpcParams<P>(name, raw);
      } catch (err) {
        if (err instanceof ValidationError) throw new JSONRPCErrorException(err.message, RpcErrorCode.InvalidParams, { issues: err.issues });
        throw err;
      }
      return run(params, frame);
    });
  }

  private define(): void {
    const r = this.registry;
    this.method<{ study: string; config?: Params }>("study.open", (p) => r.open(p.study, p.config));
    this.method<Params>("study.list", () => ({ studies: r.list() }));
    this.method<{ study: string }>("study.trials", (p) => ({ study: p.study, trials: r.trials(p.study) }));
    this.method<ReportParams>("trial.report", (p, frame) => {
      const { study, trial } = p;
      const step = p.payload.step;
      const reported = r.report(study, trial, takePayload(p), frame.text);
      return reported.then(({ duplicate }) => ({ study, trial, step, duplicate }));
    });
    this.method<ReportParams>("trial.reportAndAssess", (p, frame) => {
      const study = p.study;
      const reported = r.report(study, p.trial, takePayload(p), frame.text);
      // { study, ...verdict, duplicate }, built around the verdict's JSON text rather than serialising the verdict again
      return reported.then(
        ({ verdictJson, duplicate }) => new SerializedResult(`{"study":${JSON.stringify(study)},${verdictJson.slice(1, -1)},"duplicate":${String(duplicate)}}`),
      );
    });
    this.method<{ study: string; trial: string; step?: number }>("trial.assess", (p) => ({
      study: p.study,
      ...r.assess(p.study, p.trial, p.step),
    }));
    this.method<{ study: string; trial: string; state: TrialEndState }>("trial.end", async (p) => {
      await r.end(p.study, p.trial, p.state);
      return { study: p.study, trial: p.trial, state: p.state };
    });
    this.method<{ study: string; trial: string }>("trial.history", (p) => ({
      study: p.study,
      trial: p.trial,
      verdicts: r.history(p.study, p.trial),
    }));
    this.method<Params>("service.health", () => ({
      status: "ok",
      version: this.info.version,
      db: this.info.db,
      studies: r.size,
      uptime_s: Math.round((this.info.now() - this.info.startedAt) / 1000),
      recent_frames: this.latency.summary(),
      ...(this.info.runtime ? { runtime: this.info.runtime() } : {}),
    }));
  }
}

/** A method's result that is already JSON text: the reply embeds the text as it is. */
class SerializedResult {
  constructor(readonly json: string) {}
  /** What JSON.stringify sees if the result is ever serialised as a value. */
  toJSON(): unknown {
    return JSON.parse(this.json);
  }
}

/** A reply's JSON text; a SerializedResult goes in verbatim. */
function replyText(reply: JSONRPCResponse): string {
  if ("result" in reply && reply.result instanceof SerializedResult) {
    return `{"jsonrpc":"2.0","id":${JSON.stringify(reply.id)},"result":${reply.result.json}}`;
  }
  return JSON.stringify(reply);
}

function invalid(id: string | number | null, reason: string): JSONRPCResponse {
  return createJSONRPCErrorResponse(id, RpcErrorCode.InvalidRequest, `invalid request: ${reason}`);
}

/** Why a parsed message is not a JSON-RPC 2.0 request, or undefined when it is one. */
function requestProblem(m: unknown): string | undefined {
  if (!isPlainObject(m)) return "a request must be a JSON object";
  const r = m;
  if (r.jsonrpc !== "2.0") return 'the field jsonrpc must be "2.0"';
  if (typeof r.method !== "string") return "the field method must be a string";
  if ("id" in r && r.id !== null && typeof r.id !== "string" && typeof r.id !== "number") {
    return "the field id must be a string, a number or null";
  }
  if ("params" in r && (r.params === null || typeof r.params !== "object")) return "the field params must be an object or an array";
  if ("result" in r || "error" in r) return "a request has no result or error field";
  return undefined;
}
