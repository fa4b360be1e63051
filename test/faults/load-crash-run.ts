/**
 * Load with a crash (`runLoadCrash`): the service-benchmark load — N WebSocket clients,
 * one trial each, S steps of trial.reportAndAssess with 10-layer payloads, persistence
 * on a SQLite file — and in the middle of it the service is killed with SIGKILL and
 * started again on the same database and port (a new port when that one cannot be had;
 * the clients then learn the new address).
 *
 * A client counts a call as acknowledged only when its reply arrives. A call without a
 * reply (connection gone, or no answer within the call timeout) is not acknowledged: the
 * client reconnects with exponential backoff and jitter and sends the same step again
 * (the service is idempotent per (study, trial, step), so a step whose commit survived
 * the kill is answered again, duplicate: true, with its stored verdict).
 *
 * At the end, with the service stopped, the database is read and checked:
 *  - every acknowledged report is in the database (missing must be 0);
 *  - every acknowledged verdict equals the verdict column of its row;
 *  - replaying the stored events in arrival order through a fresh DiagnosisEngine (a
 *    service that never stopped, fed the same stream) gives exactly the stored verdicts.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import WebSocket from "ws";
import { DiagnosisEngine } from "../../src/diagnosis/engine.js";
import { storedPayload } from "../../src/store/stored-payload.js";
import { readStudyLog } from "../../src/store/study-log.js";
import { describeExit, startService, stopService, type ServiceProcess } from "../serve-process.js";

export interface LoadCrashOptions {
  clients: number;
  steps: number;
  /** The kill comes when this fraction of all reports has been acknowledged. */
  killAt: number;
  log: (line: string) => void;
}

export const DEFAULT_LOAD_CRASH: Omit<LoadCrashOptions, "log"> = { clients: 1000, steps: 20, killAt: 0.5 };

/** What the clients counted, over all trials. */
export interface ClientCounts {
  acknowledged: number;
  /** Acknowledged replies that said duplicate: true (a resent step whose first commit had survived). */
  acknowledgedAsDuplicate: number;
  resends: number;
  reconnects: number;
  failedConnects: number;
  /** Calls answered with an error (none expected). */
  errorReplies: number;
}

export interface LoadCrashSummary extends ClientCounts {
  options: Omit<LoadCrashOptions, "log">;
  durationS: number;
  /** Seconds from the start of the load to the kill, and from the kill to the restarted service's start-up line. */
  killedAfterS: number;
  downtimeS: number;
  acknowledgedBeforeKill: number;
  /** Reports the restarted service replayed from the database: acknowledged before the kill, or committed but not yet acknowledged. */
  restoredReports: number;
  /** Calls in flight when the service died: sent, never answered. */
  unansweredAtKill: number;
  storedReports: number;
  missingFromDatabase: number;
  /** Acknowledged verdicts that differ from their stored row. */
  verdictsDifferingFromStore: number;
  /** Stored verdicts that differ from a fresh engine replaying the stored stream. */
  verdictsDifferingFromReplay: number;
  restartedOnSamePort: boolean;
  problems: string[];
}

const STUDY = "load-crash";
const CALL_TIMEOUT_MS = 10_000;
const BACKOFF_FIRST_MS = 50;
const BACKOFF_MAX_MS = 1_000;
const KILL_DELAY_MS = 3;

/** A 10-layer payload as in the service benchmark; some trials explode or turn NaN, so that stop verdicts are in the stream. */
function payload(step: number, trial: number, steps: number): Record<string, unknown> {
  const loss = 2.3 * Math.exp(-0.2 * (0.5 + (trial % 10) / 10) * step) + 0.05;
  const exploding = trial % 10 === 3 && step >= 5;
  const nan = trial % 10 === 7 && step >= 8;
  return {
    step,
    max_steps: steps,
    metrics: { train_loss: nan ? null : loss, val_loss: loss * 1.07, train_acc: 1 - loss / 2.4, val_acc: 1 - loss / 2.3 },
    layers: Array.from({ length: 10 }, (_, i) => ({
      name: `dense_${i}`,
      grad_abs_mean: 1e-3 * (1 + 0.05 * i + 0.01 * (trial % 7)) * (exploding ? 20 ** (10 - i) : 1),
      grad_zero_frac: 0.05,
      grad_abs_max: 0.05,
      weight_abs_mean: 0.05,
      update_ratio: 0.03,
      act_zero_frac: 0.02,
    })),
    non_finite: nan,
    seconds: 1.2,
  };
}

/** Where the clients find the service: changes when it restarts. */
interface Target {
  url: string;
}

/** The clients' counts as they run, with the calls sent and not yet answered or lost. */
interface Counters extends ClientCounts {
  inFlight: number;
}

type CallOutcome = { kind: "reply"; text: string } | { kind: "lost" };

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** One trial's client: a connection that may break, and one call in flight at a time. */
class TrialClient {
  private ws: WebSocket | undefined;
  private nextId = 1;
  private waiting: ((outcome: CallOutcome) => void) | undefined;
  /** The verdict text of every acknowledged step (the reply's result without study and duplicate). */
  readonly verdicts = new Map<number, string>();

  constructor(
    readonly trial: number,
    private readonly target: Target,
    private readonly counters: Counters,
  ) {}

  /** Reports every step, each until it is acknowledged. */
  async run(steps: number, onAck: () => void): Promise<void> {
    for (let step = 0; step < steps; step++) {
      const body = JSON.stringify({ study: STUDY, trial: `t${this.trial}`, payload: payload(step, this.trial, steps) });
      for (let attempt = 0; ; attempt++) {
        if (attempt > 0) this.counters.resends++;
        const outcome = await this.call(body);
        if (outcome.kind === "lost") continue;
        if (this.acknowledge(step, outcome.text)) break;
      }
      onAck();
    }
    this.ws?.close();
  }

  /** True when the reply acknowledges the step; an error reply is counted and the step sent again after a pause. */
  private acknowledge(step: number, text: string): boolean {
    const reply = JSON.parse(text) as { result?: Record<string, unknown>; error?: unknown };
    if (reply.result === undefined) {
      this.counters.errorReplies++;
      return false;
    }
    const { study: _study, duplicate, ...verdict } = reply.result;
    this.verdicts.set(step, JSON.stringify(verdict));
    this.counters.acknowledged++;
    if (duplicate === true) this.counters.acknowledgedAsDuplicate++;
    return true;
  }

  private async call(params: string): Promise<CallOutcome> {
    const ws = await this.connected();
    const id = this.nextId++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => finish({ kind: "lost" }), CALL_TIMEOUT_MS);
      const finish = (outcome: CallOutcome): void => {
        if (this.waiting !== finish) return;
        this.waiting = undefined;
        this.counters.inFlight--;
        clearTimeout(timer);
        if (outcome.kind === "lost") this.drop();
        resolve(outcome);
      };
      this.waiting = finish;
      this.counters.inFlight++;
      ws.send(`{"jsonrpc":"2.0","id":${id},"method":"trial.reportAndAssess","params":${params}}`, (err) => {
        if (err) finish({ kind: "lost" });
      });
    });
  }

  /** The open connection, or a new one after a backoff that doubles up to 1 s (with jitter, so 1,000 clients do not come back at once). */
  private async connected(): Promise<WebSocket> {
    if (this.ws !== undefined && this.ws.readyState === WebSocket.OPEN) return this.ws;
    for (let attempt = 0; ; attempt++) {
      if (attempt > 0 || this.ws !== undefined) {
        const backoff = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** attempt);
        await sleep(backoff / 2 + Math.random() * (backoff / 2));
      }
      try {
        const ws = await this.open();
        if (this.ws !== undefined) this.counters.reconnects++;
        this.ws = ws;
        return ws;
      } catch {
        this.counters.failedConnects++;
      }
    }
  }

  private open(): Promise<WebSocket> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(this.target.url, { perMessageDeflate: false });
      ws.once("open", () => {
        ws.off("error", reject);
        ws.on("error", () => {});
        ws.on("message", (data) => {
          if (this.ws === ws) this.waiting?.({ kind: "reply", text: String(data) });
        });
        ws.on("close", () => {
          if (this.ws === ws) this.waiting?.({ kind: "lost" });
        });
        resolve(ws);
      });
      ws.once("error", reject);
    });
  }

  private drop(): void {
    this.ws?.terminate();
  }
}

class LoadCrashRun {
  private readonly counters: Counters = { acknowledged: 0, acknowledgedAsDuplicate: 0, resends: 0, reconnects: 0, failedConnects: 0, errorReplies: 0, inFlight: 0 };
  private readonly problems: string[] = [];
  private readonly target: Target;
  private service: ServiceProcess;
  private killed: Promise<void> | undefined;
  private killedAfterS = Number.NaN;
  private downtimeS = Number.NaN;
  private acknowledgedBeforeKill = 0;
  private unansweredAtKill = 0;
  private restartedOnSamePort = false;
  private restoredReports = Number.NaN;
  private readonly started = performance.now();

  constructor(
    private readonly options: LoadCrashOptions,
    private readonly db: string,
    first: ServiceProcess,
  ) {
    this.service = first;
    this.target = { url: first.url };
  }

  async run(): Promise<LoadCrashSummary> {
    const { clients, steps } = this.options;
    const total = clients * steps;
    const killAfter = Math.max(1, Math.floor(total * this.options.killAt));
    const trialClients = Array.from({ length: clients }, (_, t) => new TrialClient(t, this.target, this.counters));
    const onAck = (): void => {
      // a few milliseconds later, not inside a burst of replies: the kill then falls between a commit and its replies now and then
      if (this.killed === undefined && this.counters.acknowledged >= killAfter) this.killed = sleep(KILL_DELAY_MS).then(() => this.killAndRestart());
    };
    await Promise.all(trialClients.map((c) => c.run(steps, onAck)));
    await this.killed;
    const durationS = (performance.now() - this.started) / 1000;
    await stopService(this.service);
    return this.check(trialClients, durationS);
  }

  private async killAndRestart(): Promise<void> {
    this.killedAfterS = (performance.now() - this.started) / 1000;
    this.acknowledgedBeforeKill = this.counters.acknowledged;
    this.unansweredAtKill = this.counters.inFlight;
    const killedAt = performance.now();
    this.service.child.kill("SIGKILL");
    const exit = await this.service.exited;
    this.options.log(`killed the service (${describeExit(exit)}) after ${this.acknowledgedBeforeKill} acknowledged reports, ${this.unansweredAtKill} calls in flight`);
    const port = this.service.port;
    const restarting = performance.now();
    try {
      this.service = await startService({ args: ["--db", this.db], port, keepLines: 50 });
      this.restartedOnSamePort = true;
    } catch (err) {
      this.options.log(`port ${port} not available again (${(err as Error).message.split("\n")[0] ?? ""}); restarting on a new port`);
      this.service = await startService({ args: ["--db", this.db], keepLines: 50 });
    }
    this.target.url = this.service.url;
    this.downtimeS = (performance.now() - killedAt) / 1000;
    this.options.log(`restarted on ${this.service.url} after ${this.downtimeS.toFixed(2)} s (of which ${((performance.now() - restarting) / 1000).toFixed(2)} s from spawn to listening)`);
    const restored = this.service.logTail().find((line) => line.includes('"study restored"'));
    this.restoredReports = Number(/"payloads":(\d+)/.exec(restored ?? "")?.[1] ?? Number.NaN);
  }

  private check(trialClients: TrialClient[], durationS: number): LoadCrashSummary {
    const [study] = readStudyLog(this.db, [STUDY]);
    const stored = new Map<string, string>();
    let verdictsDifferingFromReplay = 0;
    if (study === undefined) this.problems.push(`the database has no study ${STUDY}`);
    else {
      const engine = new DiagnosisEngine(study.config);
      for (const e of study.events) {
        if (e.kind !== "payload") continue;
        stored.set(`${e.trial}@${e.step}`, e.verdict);
        if (JSON.stringify(engine.report(e.trial, storedPayload(e.body, e.format))) !== e.verdict) verdictsDifferingFromReplay++;
      }
    }
    let missing = 0;
    let differing = 0;
    for (const client of trialClients) {
      for (const [step, verdict] of client.verdicts) {
        const row = stored.get(`t${client.trial}@${step}`);
        if (row === undefined) missing++;
        else if (row !== verdict) differing++;
      }
    }
    const expected = this.options.clients * this.options.steps;
    const acknowledgedSteps = trialClients.reduce((n, c) => n + c.verdicts.size, 0);
    if (acknowledgedSteps !== expected) this.problems.push(`${expected - acknowledgedSteps} step(s) never acknowledged`);
    if (stored.size !== expected) this.problems.push(`${stored.size} reports stored, expected ${expected}`);
    if (missing > 0) this.problems.push(`${missing} acknowledged report(s) missing from the database`);
    if (differing > 0) this.problems.push(`${differing} acknowledged verdict(s) differ from the stored ones`);
    if (verdictsDifferingFromReplay > 0) this.problems.push(`${verdictsDifferingFromReplay} stored verdict(s) differ from a fresh engine replaying the stream`);
    if (this.counters.errorReplies > 0) this.problems.push(`${this.counters.errorReplies} call(s) answered with an error`);
    if (Number.isNaN(this.killedAfterS)) this.problems.push("the service was never killed");
    const { log: _log, ...options } = this.options;
    const { inFlight: _inFlight, ...counts } = this.counters;
    return {
      options,
      durationS,
      killedAfterS: this.killedAfterS,
      downtimeS: this.downtimeS,
      acknowledgedBeforeKill: this.acknowledgedBeforeKill,
      restoredReports: this.restoredReports,
      unansweredAtKill: this.unansweredAtKill,
      ...counts,
      storedReports: stored.size,
      missingFromDatabase: missing,
      verdictsDifferingFromStore: differing,
      verdictsDifferingFromReplay,
      restartedOnSamePort: this.restartedOnSamePort,
      problems: this.problems,
    };
  }
}

/** Runs the load on a fresh database, kills and restarts the service in the middle, and checks the database. */
export async function runLoadCrash(options: LoadCrashOptions): Promise<LoadCrashSummary> {
  const dir = mkdtempSync(join(tmpdir(), "bttackler-crash-"));
  const db = join(dir, "load-crash.db");
  const first = await startService({ args: ["--db", db], keepLines: 50 });
  options.log(`service ${first.url} (pid ${first.pid}), database ${db}`);
  const run = new LoadCrashRun(options, db, first);
  try {
    return await run.run();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function formatLoadCrash(s: LoadCrashSummary): string {
  const lines = [
    `bttackler load with a crash: ${s.options.clients} clients × ${s.options.steps} steps of trial.reportAndAssess (10 layers), SQLite file; SIGKILL at ${Math.round(s.options.killAt * 100)} % acknowledged`,
    `killed after ${s.killedAfterS.toFixed(2)} s (${s.acknowledgedBeforeKill} acknowledged, ${s.unansweredAtKill} calls in flight); restarted on ${s.restartedOnSamePort ? "the same" : "a new"} port, ${s.downtimeS.toFixed(2)} s later, with ${s.restoredReports} reports restored from the database`,
    `acknowledged ${s.acknowledged} (${s.acknowledgedAsDuplicate} of them duplicates: resent steps whose commit had survived the kill); resends ${s.resends}, reconnects ${s.reconnects}, failed connection attempts ${s.failedConnects}, error replies ${s.errorReplies}`,
    `database: ${s.storedReports} reports stored; acknowledged but missing: ${s.missingFromDatabase}; acknowledged verdicts differing from the stored ones: ${s.verdictsDifferingFromStore}; stored verdicts differing from a fresh engine replaying the stream: ${s.verdictsDifferingFromReplay}`,
    `duration ${s.durationS.toFixed(1)} s`,
  ];
  lines.push(s.problems.length === 0 ? "OK: nothing acknowledged was lost, and the verdicts after the restart are those of a service that never stopped" : `FAILED: ${s.problems.join("; ")}`);
  return lines.join("\n");
}
