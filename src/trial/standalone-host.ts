/**
 * Standalone: the trial talks to `bttackler serve` itself (docs/protocol.md), with no HPO
 * host in between — a script run by hand, by a shell loop, or by any scheduler.
 *
 * Environment: `BTTACKLER_URL` (ws://…, required), `BTTACKLER_TOKEN` (optional, sent as
 * `Authorization: Bearer`), `BTTACKLER_STUDY` (default "standalone"), `BTTACKLER_TRIAL`
 * (default a generated id), `BTTACKLER_PARAMS` (a JSON object, default `{}`).
 *
 * Each report is one `trial.reportAndAssess`; its verdict is the service's. `final`
 * ends the trial with `trial.end`: state "pruned" when the trial was stopped (a stop
 * verdict or a signal), else "complete"; a trial that sent no report is not ended (the
 * service would refuse it as unknown). The final value itself is not sent (the service
 * keeps no metric of its own). Every call is bounded by the per-call timeout and fails
 * open: a timeout, a refused or lost connection, or an error reply answers
 * `{stop: false}`, with one warning on standard error for the trial.
 */
import { randomUUID } from "node:crypto";
import type { PayloadV1 } from "../diagnosis/types.js";
import { isPlainObject } from "../schema/json.js";
import { paramsFromEnv } from "./params.js";
import { RpcFailure, TrialRpcClient } from "./ws-client.js";
import type { FinalValue, HostContext, TrialHost, TrialParams, TrialVerdict } from "./types.js";

export const URL_ENV = "BTTACKLER_URL";
export const DEFAULT_STUDY = "standalone";

const OPEN: TrialVerdict = { stop: false };

class StandaloneHost implements TrialHost {
  readonly kind = "standalone" as const;
  private readonly client: TrialRpcClient;
  private closed = false;
  /** Whether a report was sent: the service refuses to end a trial it never heard of, so one without reports is not ended. */
  private reported = false;

  constructor(
    url: string,
    token: string | undefined,
    private readonly study: string,
    readonly id: string,
    readonly params: TrialParams,
    private readonly ctx: HostContext,
  ) {
    this.client = new TrialRpcClient(url, { token, timeoutMs: ctx.timeoutMs });
  }

  async report(payload: PayloadV1): Promise<TrialVerdict> {
    this.reported = true;
    try {
      const result = await this.client.call("trial.reportAndAssess", { study: this.study, trial: this.id, payload });
      if (!isPlainObject(result) || typeof result.stop !== "boolean") {
        throw new RpcFailure(`unexpected answer to trial.reportAndAssess: ${JSON.stringify(result)?.slice(0, 120)}`);
      }
      return typeof result.reason === "string" ? { stop: result.stop, reason: result.reason } : { stop: result.stop };
    } catch (err) {
      this.fault(err);
      return OPEN;
    }
  }

  async final(_value: FinalValue, stopped: boolean): Promise<void> {
    if (!this.reported) return;
    try {
      await this.client.call("trial.end", { study: this.study, trial: this.id, state: stopped ? "pruned" : "complete" }, true);
    } catch (err) {
      this.fault(err);
    }
  }

  close(): void {
    this.closed = true;
    this.client.close();
  }

  private fault(err: unknown): void {
    if (this.closed) return; // closing fails what is in flight: not a fault of the service
    const message = err instanceof Error ? err.message : String(err);
    this.ctx.warn("service", `the bttackler service at ${redact(this.client.url)} is unavailable (${message}); reports are answered stop=false until it answers`);
  }
}

/** The URL with the value of a `token` query parameter hidden. */
export function redact(url: string): string {
  return url.replace(/([?&]token=)[^&#\s]*/gi, "$1***");
}

function name(env: Record<string, string | undefined>, key: string, fallback: string): string {
  const value = env[key];
  if (value === undefined || value === "") return fallback;
  if (value.length > 256) throw new TypeError(`bttackler trial: ${key} must be at most 256 characters, got ${value.length}`);
  return value;
}

export function openStandaloneHost(ctx: HostContext): TrialHost {
  const url = ctx.env[URL_ENV] ?? "";
  if (!/^wss?:\/\//i.test(url)) {
    throw new TypeError(`bttackler trial: ${URL_ENV} must be a ws:// or wss:// URL, got ${JSON.stringify(redact(url))}`);
  }
  const study = name(ctx.env, "BTTACKLER_STUDY", DEFAULT_STUDY);
  const id = name(ctx.env, "BTTACKLER_TRIAL", randomUUID());
  return new StandaloneHost(url, ctx.env.BTTACKLER_TOKEN || undefined, study, id, paramsFromEnv(ctx.env), ctx);
}
