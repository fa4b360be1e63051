/**
 * NNI 3.0: the trial command channel of its local training service, plain HTTP at
 * `$NNI_TRIAL_COMMAND_CHANNEL` (docs/nni.md; NNI's `nni/runtime/trial_command_channel/v3.py`
 * and `ts/nni_manager/common/command_channel/http.ts`).
 *
 * - Parameters: `PUT {"type":"request_parameter"}` once, then long-poll `GET`: 200 gives
 *   `{"type":"parameter","parameter":"<json string>"}` whose parsed value holds
 *   `parameter_id` and `parameters`; 408 (the manager waited 1 s with nothing to send)
 *   means poll again; 410 means the channel is closed (the trial gets no parameters:
 *   `params` is `{}`, with a warning).
 * - Metrics: `PUT {"type":"metric","metric":"<json string>"}`, the inner object being
 *   `{parameter_id, trial_job_id: $NNI_TRIAL_JOB_ID, type: "PERIODICAL"|"FINAL",
 *   sequence, value: "<json string>"}` — the value is encoded twice. PERIODICAL results
 *   count 0, 1, 2, … (one per report); FINAL uses sequence 0. What the value holds is in
 *   nni-metric.ts.
 * - Verdicts: NNI's assessor (bttackler's, on the dispatcher side) stops a trial by
 *   killing it — SIGINT, SIGKILL 5 s later — so `report` always answers `{stop: false}`
 *   and the SIGINT handler (signals.ts) sets `shouldStop()`.
 * - Exit: NNI 3.0 records a trial by how its process ended: exit code 0 is SUCCEEDED,
 *   another code FAILED, death by a signal USER_CANCELED (or EARLY_STOPPED). A script that
 *   stops at NNI's SIGINT, sends its final metric and returns would be recorded as
 *   SUCCEEDED. So once `final` was sent for a trial that was stopped (by a signal: on NNI
 *   nothing else stops it), the process, when it exits with code 0, ends by SIGINT
 *   instead, as a Python trial interrupted by NNI does. The final metric still reaches
 *   NNI. A script that keeps a SIGINT handler of its own at exit exits with its code.
 *
 * PUTs go out one at a time, in order, each bounded by the per-call timeout. A PUT that
 * fails on the network (not a timeout) is sent once more at once: the manager's HTTP server
 * closes a kept-alive connection after 5 s idle, and a PUT that set out on it just then
 * fails with a socket error before the manager read it (seen with real NNI on epochs of
 * about 5 s). This matters: NNI gives the assessor only the unbroken prefix of a trial's
 * intermediate results, so one lost result hides every later one from it. A PUT that
 * still fails (network, timeout, a status other than 2xx) is dropped with one warning:
 * the trial trains on, as it would without NNI. Failing to get the parameters is not an
 * infrastructure fault to ride out — the trial cannot run without them — so `openNniHost`
 * rejects then (a poll that fails on the network is tried three times), except on 410.
 */
import { isPlainObject, parseJson } from "../schema/json.js";
import type { PayloadV1 } from "../diagnosis/types.js";
import { DefaultMetric, encodeFinal, encodeIntermediate } from "./nni-metric.js";
import type { FinalValue, HostContext, TrialHost, TrialParams, TrialVerdict } from "./types.js";

export const NNI_CHANNEL_ENV = "NNI_TRIAL_COMMAND_CHANNEL";

/** How long one GET may take: the manager answers within about 1 s (408 when it has nothing). */
const POLL_TIMEOUT_MS = 15_000;
const POLL_ATTEMPTS = 3;

type ParameterId = number | string | null;

interface NniMetric {
  parameter_id: ParameterId;
  trial_job_id: string | null;
  type: "PERIODICAL" | "FINAL";
  sequence: number;
  value: string;
}

function isTimeout(err: unknown): boolean {
  const name = (err as { name?: string })?.name;
  return name === "TimeoutError" || name === "AbortError";
}

function describe(err: unknown): string {
  const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e?.name === "TimeoutError" || e?.name === "AbortError") return "timed out";
  const cause = e?.cause?.code ?? e?.cause?.message;
  return `${e?.message ?? String(err)}${cause ? ` (${cause})` : ""}`;
}

/** The NNI channel URL from the environment; a channel that is not HTTP is refused (NNI 3.0 local only speaks HTTP). */
export function nniChannelUrl(env: Record<string, string | undefined>): string {
  const url = env[NNI_CHANNEL_ENV] ?? "";
  if (!/^https?:\/\//i.test(url)) {
    throw new Error(`bttackler trial: ${NNI_CHANNEL_ENV} must be an http:// URL (NNI 3.0's trial command channel), got ${JSON.stringify(url)}`);
  }
  return url;
}

class NniHost implements TrialHost {
  readonly kind = "nni" as const;
  private sequence = 0;
  private queue: Promise<unknown> = Promise.resolve();
  private readonly metric: DefaultMetric;

  constructor(
    private readonly url: string,
    readonly id: string,
    private readonly trialJobId: string | null,
    private readonly parameterId: ParameterId,
    readonly params: TrialParams,
    private readonly ctx: HostContext,
  ) {
    this.metric = new DefaultMetric(ctx.metric);
  }

  async report(payload: PayloadV1): Promise<TrialVerdict> {
    const value = encodeIntermediate(this.metric.pick(payload), payload);
    await this.sendMetric("PERIODICAL", this.sequence++, value);
    return { stop: false };
  }

  async final(value: FinalValue, stopped: boolean): Promise<void> {
    await this.sendMetric("FINAL", 0, encodeFinal(value));
    if (stopped) exitBySignalWhenDone();
  }

  close(): void {
    /* HTTP: nothing held open */
  }

  private sendMetric(type: NniMetric["type"], sequence: number, value: string): Promise<void> {
    const metric: NniMetric = { parameter_id: this.parameterId, trial_job_id: this.trialJobId, type, sequence, value };
    const body = { type: "metric", metric: JSON.stringify(metric) };
    const sent = this.queue.then(() => this.put(body));
    this.queue = sent;
    return sent;
  }

  private async put(body: unknown): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        const res = await putJson(this.url, body, this.ctx.timeoutMs);
        if (!res.ok) {
          this.ctx.warn("nni-metric", `NNI's trial command channel answered a metric with HTTP ${res.status}${res.status === 410 ? " (channel closed)" : ""}; metrics are not reaching NNI`);
        }
        return;
      } catch (err) {
        if (attempt === 1 && !isTimeout(err)) continue; // most likely a kept-alive connection the manager had just closed
        this.ctx.warn("nni-metric", `could not send a metric to NNI's trial command channel ${this.url}: ${describe(err)}; metrics are not reaching NNI`);
        return;
      }
    }
  }
}

let exitHooked = false;

/** At a clean exit (code 0), ends the process by SIGINT, so that NNI does not record a stopped trial as SUCCEEDED. */
function exitBySignalWhenDone(): void {
  if (exitHooked) return;
  exitHooked = true;
  process.once("exit", (code) => {
    // Our SIGINT handlers are gone by now (trial.close removes them): the default action ends the process.
    if (code === 0 && process.listenerCount("SIGINT") === 0) process.kill(process.pid, "SIGINT");
  });
}

async function putJson(url: string, body: unknown, timeoutMs: number): Promise<Response> {
  const res = await fetch(url, {
    method: "PUT",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(timeoutMs),
  });
  await res.arrayBuffer(); // drain, so the connection is reused
  return res;
}

/** Long-polls the channel for the parameter command: the command, or undefined when the channel is closed (410). */
async function receiveParameter(url: string): Promise<Record<string, unknown> | undefined> {
  let failures = 0;
  for (;;) {
    let res: Response;
    try {
      res = await fetch(url, { method: "GET", signal: AbortSignal.timeout(POLL_TIMEOUT_MS) });
    } catch (err) {
      if (++failures >= POLL_ATTEMPTS) throw new Error(`bttackler trial: NNI's trial command channel ${url} did not answer: ${describe(err)}`);
      continue;
    }
    const text = await res.text();
    if (res.status === 408) continue;
    if (res.status === 410) return undefined;
    if (res.status !== 200) throw new Error(`bttackler trial: NNI's trial command channel answered the parameter request with HTTP ${res.status}`);
    const command = parseJson(text);
    if (!isPlainObject(command) || command.type !== "parameter" || typeof command.parameter !== "string") {
      throw new Error(`bttackler trial: NNI's trial command channel sent ${text.slice(0, 200)}, expected a parameter command`);
    }
    return command;
  }
}

/** Connects to NNI: requests the trial's parameters (once) and waits for them. */
export async function openNniHost(ctx: HostContext): Promise<TrialHost> {
  const url = nniChannelUrl(ctx.env);
  const trialJobId = ctx.env.NNI_TRIAL_JOB_ID ?? null;
  const envParameterId = ctx.env.NNI_PARAMETER_ID;
  let parameterId: ParameterId = envParameterId !== undefined && /^\d+$/.test(envParameterId) ? Number(envParameterId) : null;
  let params: TrialParams = {};

  const closed = (): TrialHost => {
    ctx.warn("nni-closed", "NNI's trial command channel is closed: this trial gets no parameters (params = {})");
    return new NniHost(url, trialJobId ?? "nni", trialJobId, parameterId, params, ctx);
  };
  let res: Response;
  try {
    res = await putJson(url, { type: "request_parameter" }, Math.max(ctx.timeoutMs, POLL_TIMEOUT_MS));
  } catch (err) {
    throw new Error(`bttackler trial: could not request parameters from NNI's trial command channel ${url}: ${describe(err)}`);
  }
  if (res.status === 410) return closed();
  if (!res.ok) throw new Error(`bttackler trial: NNI's trial command channel answered the parameter request with HTTP ${res.status}`);

  const command = await receiveParameter(url);
  if (command === undefined) return closed();
  const record = parseJson(command.parameter as string);
  if (!isPlainObject(record)) throw new Error(`bttackler trial: NNI sent a parameter that is not an object: ${String(command.parameter).slice(0, 200)}`);
  const id = record.parameter_id;
  if (typeof id === "number" || typeof id === "string") parameterId = id;
  if (isPlainObject(record.parameters)) params = record.parameters;
  else if (record.parameters !== undefined && record.parameters !== null) {
    throw new Error(`bttackler trial: NNI's parameters are not an object: ${JSON.stringify(record.parameters).slice(0, 200)}`);
  }
  return new NniHost(url, trialJobId ?? "nni", trialJobId, parameterId, params, ctx);
}
