/**
 * The Optuna relay: the trial is a child process of a Python process (the Optuna
 * objective, bttackler's Python adapter) that owns the Optuna trial and answers each
 * report with a verdict. The two talk JSON lines over one bidirectional file descriptor.
 *
 * Protocol "Optuna relay (JSON lines)", version 1 (also in docs/protocol.md):
 *
 * Set-up (the parent):
 * - creates a connected pair of stream sockets (`socket.socketpair()`), keeps one end and
 *   passes the other to the child under a fixed descriptor number (e.g.
 *   `subprocess.Popen(cmd, pass_fds=[fd])`, the number staying the same in the child); a
 *   one-way pipe will not do;
 * - sets `BTTACKLER_RELAY_FD` to that number, `BTTACKLER_PARAMS` to the trial's
 *   hyperparameters as a JSON object, and optionally `BTTACKLER_TRIAL` to a name for the
 *   trial (messages only; the default is `relay-<pid>`).
 *
 * Framing: UTF-8, one JSON object per line, each line ending in "\n" (JSON text never
 * holds a raw newline). Non-finite numbers are written as `null` by the child (payload
 * v1's convention); the child also reads the bare tokens NaN/Infinity/-Infinity that
 * Python's `json.dumps` writes. Unknown fields are ignored by both sides.
 *
 * Child → parent:
 * - `{"type":"report","payload":{...payload v1...}}` — one per `trial.report(payload)`,
 *   the payload already validated against payload.v1. The child then waits for the verdict.
 * - `{"type":"final","value":x}` — once, on `trial.final(value)`: `x` is the final number
 *   (`null` when not finite), or the object given to `final` (`{"default": x, ...}`).
 *   No answer is expected. The child then shuts down its sending side: the parent reads
 *   end-of-file.
 *
 * Parent → child:
 * - `{"type":"verdict","stop":true|false,"reason":"..."}` — exactly one per report line, in
 *   the order of the reports (strict alternation: the child never has two reports
 *   waiting), `reason` optional. `stop: true` makes `trial.shouldStop()` true. The parent
 *   sends nothing else.
 *
 * End: the child closes its end when it exits, with or without a final line (a script
 * that was stopped may exit without one); the parent reads end-of-file then. To stop the
 * child from outside, the parent sends SIGINT or SIGTERM, which sets `shouldStop()`.
 *
 * Faults (fail open): if the descriptor is not open or not a socket (it is never used
 * then: a wrong number must not take over a descriptor of Node's own), the parent closes its end, a
 * line is not a JSON object of type "verdict" with a boolean `stop` or is longer than 1 MiB, a line comes while no
 * report waits, or no verdict comes within the relay timeout (default 10 s), the relay is
 * broken for good: the waiting report and every later one are answered `{stop: false}` at
 * once, and one warning goes to standard error. The trial trains on as if unmonitored.
 */
import { fstatSync } from "node:fs";
import { Socket } from "node:net";
import { isPlainObject, parseJson } from "../schema/json.js";
import type { PayloadV1 } from "../diagnosis/types.js";
import { paramsFromEnv } from "./params.js";
import type { FinalValue, HostContext, TrialHost, TrialVerdict } from "./types.js";
import { LineSplitter } from "../io/lines.js";

/** Longest verdict line accepted from the parent (a verdict is tens of bytes; this only stops a runaway). */
const MAX_RELAY_LINE = 1024 * 1024;

export const RELAY_FD_ENV = "BTTACKLER_RELAY_FD";

interface Waiting {
  resolve: (verdict: TrialVerdict) => void;
  timer: NodeJS.Timeout;
}

const OPEN: TrialVerdict = { stop: false };

class RelayHost implements TrialHost {
  readonly kind = "optuna" as const;
  private socket: Socket | undefined;
  private broken = false;
  /** After final: the end of the relay is expected, not a fault. */
  private finished = false;
  private readonly lines = new LineSplitter(MAX_RELAY_LINE, {
    line: (text) => {
      const line = text.trim();
      if (!this.broken && line !== "") this.onLine(line);
    },
    tooLong: (length) => this.fail(`a line of ${length} bytes exceeds the limit of ${MAX_RELAY_LINE}`),
  });
  private waiting: Waiting | undefined;

  constructor(
    private readonly fd: number,
    readonly id: string,
    readonly params: Record<string, unknown>,
    private readonly ctx: HostContext,
  ) {
    try {
      // only a socket: a wrong number must never take over one of Node's own descriptors (pipes, eventfd)
      if (!fstatSync(fd).isSocket()) {
        this.fail(`file descriptor ${fd} is not a socket`);
        return;
      }
      const socket = new Socket({ fd, readable: true, writable: true });
      socket.on("data", (chunk: Buffer) => this.lines.push(chunk));
      socket.on("end", () => this.fail("the parent closed the relay"));
      socket.on("error", (err) => this.fail(`relay error: ${err.message}`));
      socket.on("close", () => this.fail("the relay was closed"));
      // idle, the relay must not keep the process alive: a stopped script exits by itself
      socket.unref();
      this.socket = socket;
    } catch (err) {
      this.fail(`cannot open file descriptor ${fd}: ${(err as Error).message}`);
    }
  }

  report(payload: PayloadV1): Promise<TrialVerdict> {
    const socket = this.socket;
    if (this.broken || socket === undefined) return Promise.resolve(OPEN);
    return new Promise<TrialVerdict>((resolve) => {
      const timer = setTimeout(() => this.fail(`no verdict within ${this.ctx.relayTimeoutMs} ms`), this.ctx.relayTimeoutMs);
      this.waiting = { resolve, timer };
      socket.ref();
      socket.write(`${JSON.stringify({ type: "report", payload })}\n`);
    });
  }

  async final(value: FinalValue): Promise<void> {
    const socket = this.socket;
    if (this.broken || socket === undefined) return;
    this.finished = true;
    const x = typeof value === "number" && !Number.isFinite(value) ? null : value;
    socket.ref(); // until the line is written
    await new Promise<void>((resolve) => {
      socket.write(`${JSON.stringify({ type: "final", value: x })}\n`, () => resolve());
      // an error on the write is also reported by the socket's "error" event (fail)
      socket.once("close", () => resolve());
    });
    socket.end();
  }

  close(): void {
    this.broken = true;
    this.answer(OPEN);
    this.socket?.destroy();
    this.socket = undefined;
  }

  private onLine(line: string): void {
    if (this.waiting === undefined) {
      this.fail(`the parent sent a line while no report was waiting: ${line.slice(0, 120)}`);
      return;
    }
    let message: unknown;
    try {
      message = parseJson(line);
    } catch {
      message = undefined;
    }
    if (!isPlainObject(message) || message.type !== "verdict" || typeof message.stop !== "boolean") {
      this.fail(`bad verdict line from the parent: ${line.slice(0, 120)}`);
      return;
    }
    const verdict: TrialVerdict = { stop: message.stop };
    if (typeof message.reason === "string") verdict.reason = message.reason;
    this.answer(verdict);
  }

  private answer(verdict: TrialVerdict): void {
    const waiting = this.waiting;
    if (waiting === undefined) return;
    this.waiting = undefined;
    clearTimeout(waiting.timer);
    this.socket?.unref();
    waiting.resolve(verdict);
  }

  /** The relay is broken for good: answer the waiting report, warn once, stop using the socket. */
  private fail(reason: string): void {
    if (this.broken) return;
    this.broken = true;
    if (!this.finished) this.ctx.warn("relay", `the Optuna relay (fd ${this.fd}) broke: ${reason}; reports are answered stop=false from now on`);
    this.answer(OPEN);
    this.socket?.destroy();
  }
}

/** The relay host: params from BTTACKLER_PARAMS, reports over the descriptor in BTTACKLER_RELAY_FD. */
export function openRelayHost(ctx: HostContext): TrialHost {
  const raw = ctx.env[RELAY_FD_ENV] ?? "";
  if (!/^\d+$/.test(raw.trim())) {
    throw new TypeError(`bttackler trial: ${RELAY_FD_ENV} must be a file descriptor number, got ${JSON.stringify(raw)}`);
  }
  const params = paramsFromEnv(ctx.env);
  return new RelayHost(Number(raw.trim()), ctx.env.BTTACKLER_TRIAL || `relay-${process.pid}`, params, ctx);
}
