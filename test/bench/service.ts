/**
 * `npm run bench:service` — the service under load, in its own process.
 *
 * N WebSocket clients (default 1,000, one per trial) × 20 steps of
 * trial.reportAndAssess with 10-layer payloads; persistence on (a SQLite file).
 * Phases against the same service, each a fresh study, after an unmeasured warm-up:
 *  - saturation: every client sends its next report as soon as the previous one is
 *    answered — the throughput figure (decisions/s). Its latency is queueing: with N
 *    requests always in flight, latency = N / throughput (Little's law);
 *  - paced, at each rate R of --rates: every client reports once per 1000·N/R ms, so
 *    the offered load is R decisions/s — the latency figures (p50/p99) at that load.
 * Lost = reports that were acknowledged but are not in the database afterwards,
 * plus calls that failed. The load generator builds its request texts before the
 * clock starts, so that it takes as little of the shared CPU as it can.
 * Usage: npm run bench:service -- [--clients N] [--steps S] [--rates R1,R2,...]
 * Environment: BENCH_NODE_ARGS (Node flags for both servers), BENCH_SERVICE_STDOUT=FILE (what
 * they print), BENCH_TIMELINE=DIR (every request's send time, latency and client, per phase),
 * BENCH_DB_DIR=DIR (where the service's database goes; default the system's temp dir).
 */
import { mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { parseArgs } from "node:util";
import Database from "better-sqlite3";
import WebSocket from "ws";
import { CLI, startService, stopService } from "../serve-process.js";

const { values } = parseArgs({
  options: {
    clients: { type: "string", default: "1000" },
    rates: { type: "string", default: "1000,2000,5000" },
    steps: { type: "string", default: "20" },
  },
});
const CLIENTS = Number(values.clients);
const RATES = values.rates.split(",").map(Number);
const STEPS = Number(values.steps);

function payload(step: number, trial: number): Record<string, unknown> {
  const loss = 2.3 * Math.exp(-0.2 * (0.5 + (trial % 10) / 10) * step) + 0.05;
  return {
    step,
    max_steps: STEPS,
    metrics: { train_loss: loss, val_loss: loss * 1.07, train_acc: 1 - loss / 2.4, val_acc: 1 - loss / 2.3 },
    layers: Array.from({ length: 10 }, (_, i) => ({
      name: `dense_${i}`,
      grad_abs_mean: 1e-3 * (1 + 0.05 * i + 0.01 * (trial % 7)),
      grad_zero_frac: 0.05,
      grad_abs_max: 0.05,
      weight_abs_mean: 0.05,
      update_ratio: 0.03,
      act_zero_frac: 0.02,
    })),
    non_finite: false,
    seconds: 1.2,
  };
}

class Client {
  private next = 1;
  private readonly waiting = new Map<number, (reply: { result?: unknown; error?: unknown }) => void>();
  constructor(private readonly ws: WebSocket) {
    ws.on("message", (data) => {
      const text = data.toString();
      // The load generator only needs the id and whether it is an error: read them without parsing the whole reply.
      const id = Number(/"id":(\d+)/.exec(text)?.[1]);
      const reply = text.includes('"error":') ? { id, error: text } : { id, result: text };
      this.waiting.get(reply.id)?.(reply);
      this.waiting.delete(reply.id);
    });
  }
  static open(url: string): Promise<Client> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url);
      ws.once("open", () => resolve(new Client(ws)));
      ws.once("error", reject);
    });
  }
  /** Sends a request whose text was built ahead of time (`{"jsonrpc":"2.0","id":` + id + rest). */
  send(rest: string): Promise<{ result?: unknown; error?: unknown }> {
    const id = this.next++;
    return new Promise((resolve) => {
      this.waiting.set(id, resolve);
      this.ws.send(`{"jsonrpc":"2.0","id":${id}${rest}`);
    });
  }
  close(): void {
    this.ws.close();
  }
}

/** CPU seconds used so far in user and in system (kernel) mode, from /proc: by the whole process, and by its main thread alone. */
function cpuTimes(pid: number): { user: number; system: number; mainThread: number } {
  const read = (file: string): string[] => readFileSync(file, "utf8").split(") ")[1]?.split(" ") ?? [];
  const all = read(`/proc/${pid}/stat`);
  const main = read(`/proc/${pid}/task/${pid}/stat`);
  return { user: Number(all[11]) / 100, system: Number(all[12]) / 100, mainThread: (Number(main[11]) + Number(main[12])) / 100 };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const q = (sorted: number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? NaN;

/** Payload texts by (trial % 70, step): every distinct payload of the benchmark, serialised once. */
const payloadTexts = new Map<string, string>();

/** The request texts (after the id) of every trial and step, built before the clock starts so the load generator stays light. */
function frames(study: string): string[][] {
  return Array.from({ length: CLIENTS }, (_, t) =>
    Array.from({ length: STEPS }, (_, step) => {
      const key = `${t % 70}/${step}`;
      let text = payloadTexts.get(key);
      if (text === undefined) {
        text = JSON.stringify(payload(step, t));
        payloadTexts.set(key, text);
      }
      return `,"method":"trial.reportAndAssess","params":{"study":${JSON.stringify(study)},"trial":"t${t}","payload":${text}}}`;
    }),
  );
}

interface GcTally {
  count: number;
  total_ms: number;
  max_ms: number;
}

interface PhaseResult {
  acked: Set<string>;
  failed: number;
  summary: PhaseSummary;
}

async function phase(
  name: string,
  clients: Client[],
  study: string,
  requests: string[][],
  intervalMs: number,
  servicePid: number,
  isService: boolean,
): Promise<PhaseResult> {
  const cpu0 = cpuTimes(servicePid);
  const own0 = process.cpuUsage();
  const loopDelay = monitorEventLoopDelay({ resolution: 1 });
  loopDelay.enable();
  const latencies: number[] = [];
  const acked = new Set<string>();
  let failed = 0;
  const started = performance.now();
  // BENCH_TIMELINE=DIR writes each phase's (send time, latency, client) lines to DIR/<label>-<phase>.txt
  const timeline: string[] | undefined = process.env.BENCH_TIMELINE ? [] : undefined;
  await Promise.all(
    clients.map(async (c, t) => {
      if (intervalMs > 0) await sleep((intervalMs * t) / clients.length);
      for (let step = 0; step < STEPS; step++) {
        const due = performance.now() + intervalMs;
        const t0 = performance.now();
        const reply = await c.send(requests[t]?.[step] as string);
        latencies.push(performance.now() - t0);
        timeline?.push(`${(t0 - started).toFixed(2)} ${(performance.now() - t0).toFixed(3)} ${t}`);
        if (reply.error) failed++;
        else acked.add(`${study}/t${t}@${step}`);
        if (intervalMs > 0) await sleep(Math.max(0, due - performance.now()));
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  if (timeline !== undefined) writeFileSync(join(process.env.BENCH_TIMELINE as string, `${isService ? "service" : "floor"}-${name.replace(/[^a-z0-9]+/gi, "_")}.txt`), `# ${(performance.timeOrigin + started).toFixed(1)}\n` + timeline.join("\n"));
  latencies.sort((a, b) => a - b);
  console.log(
    `${name.padEnd(15)} ${String(latencies.length).padStart(6)} decisions in ${seconds.toFixed(2)} s = ${Math.round(latencies.length / seconds)} decisions/s;` +
      ` latency p50 ${q(latencies, 0.5).toFixed(2)} ms, p99 ${q(latencies, 0.99).toFixed(2)} ms, max ${q(latencies, 1).toFixed(2)} ms; failed ${failed}`,
  );
  if (isService) {
    const health = await clients[0]?.send(`,"method":"service.health"}`);
    const { recent_frames: inside, runtime } = (
      JSON.parse(String(health?.result)) as {
        result: {
          recent_frames: { frames: number; p50_ms: number; p99_ms: number; max_ms: number };
          runtime: { event_loop_delay_ms: { p99: number; max: number }; gc_pauses: Record<"young" | "other", GcTally>; rss_mb: number; heap_used_mb: number };
        };
      }
    ).result;
    console.log(`${"".padEnd(15)} inside the service, last ${inside.frames} frames: p50 ${inside.p50_ms} ms, p99 ${inside.p99_ms} ms, max ${inside.max_ms} ms`);
    console.log(`${"".padEnd(15)} the service's event-loop delay: p99 ${runtime.event_loop_delay_ms.p99} ms, max ${runtime.event_loop_delay_ms.max} ms; RSS ${runtime.rss_mb} MB, heap used ${runtime.heap_used_mb} MB`);
    const pauses = (t: GcTally): string => `${t.count} pauses, ${t.total_ms.toFixed(0)} ms in all, max ${t.max_ms.toFixed(1)} ms`;
    console.log(`${"".padEnd(15)} the service's GC: young generation ${pauses(runtime.gc_pauses.young)}; other ${pauses(runtime.gc_pauses.other)}`);
  }
  loopDelay.disable();
  console.log(`${"".padEnd(15)} the load generator's own event-loop delay: p99 ${(loopDelay.percentile(99) / 1e6).toFixed(2)} ms, max ${(loopDelay.max / 1e6).toFixed(2)} ms`);
  const own = process.cpuUsage(own0);
  const cpu1 = cpuTimes(servicePid);
  const serviceCpu = cpu1.user + cpu1.system - cpu0.user - cpu0.system;
  const us = (seconds: number): string => ((seconds * 1e6) / latencies.length).toFixed(0);
  console.log(
    `${"".padEnd(15)} CPU per decision: service ${us(serviceCpu)} µs (user ${us(cpu1.user - cpu0.user)}, system ${us(cpu1.system - cpu0.system)}; main thread ${us(cpu1.mainThread - cpu0.mainThread)}), benchmark clients ${us((own.user + own.system) / 1e6)} µs`,
  );
  return { acked, failed, summary: { name, rate: latencies.length / seconds, p99: q(latencies, 0.99), cpuPerDecisionUs: (serviceCpu * 1e6) / latencies.length } };
}

/** A bare WebSocket server that parses each frame and answers a fixed verdict: what any service pays before doing work. */
const FLOOR_SERVER = `
import { createRequire } from "node:module";
const { WebSocketServer } = createRequire(process.argv[1])("ws");
const wss = new WebSocketServer({ host: "127.0.0.1", port: 0, maxPayload: 1 << 20 });
wss.on("connection", (ws) => ws.on("message", (data) => {
  const request = JSON.parse(data.toString());
  ws.send(JSON.stringify({ jsonrpc: "2.0", id: request.id, result: { study: "s", trial: "t", step: 0, stop: false, protected: false, symptoms: [], duplicate: false } }));
}));
wss.on("listening", () => process.stderr.write(JSON.stringify({ address: "ws://127.0.0.1:" + wss.address().port }) + "\\n"));
process.on("SIGTERM", () => process.exit(0));
`;

interface PhaseSummary {
  name: string;
  rate: number;
  p99: number;
  cpuPerDecisionUs: number;
}

async function runAgainst(label: string, args: string[], db: string | undefined): Promise<PhaseSummary[]> {
  const nodeArgs = process.env.BENCH_NODE_ARGS ? process.env.BENCH_NODE_ARGS.split(" ") : [];
  // BENCH_SERVICE_STDOUT=FILE keeps what the servers print on stdout (e.g. --trace-gc output), appended to FILE
  const stdoutFile = process.env.BENCH_SERVICE_STDOUT ? openSync(process.env.BENCH_SERVICE_STDOUT, "a") : "ignore";
  const server = await startService({ program: args, nodeArgs, stdout: stdoutFile, keepLines: 50 }).catch((err: Error) => {
    throw new Error(`${label}: ${err.message}`);
  });
  const { url, child } = server;
  console.log(`\n${label} (${url})`);
  const clients: Client[] = [];
  for (let i = 0; i < CLIENTS; i++) clients.push(await Client.open(url));
  const pid = child.pid as number;
  // every request text is built before the first phase, so no phase pays for building or collecting them
  const plan: [string, string, number][] = [
    ["warm-up", "warm-up", 0],
    ["saturation", "saturation", 0],
    ...RATES.map((rate, i): [string, string, number] => [`paced ${rate}/s`, `paced-${i}-${rate}`, (1000 * CLIENTS) / rate]),
  ];
  const requests = plan.map(([, study]) => frames(study));
  const results: PhaseResult[] = [];
  for (const [i, [name, study, interval]] of plan.entries()) {
    const result = await phase(name, clients, study, requests[i] as string[][], interval, pid, db !== undefined);
    if (i > 0) results.push(result);
  }
  for (const c of clients) c.close();
  await stopService(server);
  if (db !== undefined) {
    const rows = new Database(db, { readonly: true }).prepare("SELECT study, trial, step FROM events WHERE kind = 'payload'").all() as {
      study: string;
      trial: string;
      step: number;
    }[];
    const stored = new Set(rows.map((r) => `${r.study}/${r.trial}@${r.step}`));
    const all = results.flatMap((r) => [...r.acked]);
    const failed = results.reduce((n, r) => n + r.failed, 0);
    const lost = all.filter((k) => !stored.has(k)).length + failed;
    console.log(`measured phases: acknowledged ${all.length}, failed ${failed}, lost ${lost} (${stored.size} payload rows in the database, warm-up included)`);
  }
  return results.map((r) => r.summary);
}

async function main(): Promise<void> {
  console.log(`bttackler service benchmark: ${CLIENTS} clients × ${STEPS} steps, 10-layer payloads, node ${process.version}, ${cpus().length} CPUs`);
  const dir = mkdtempSync(join(process.env.BENCH_DB_DIR ?? tmpdir(), "bttackler-bench-"));
  const db = join(dir, "bench.db");
  const service = await runAgainst("bttackler serve (SQLite file)", [CLI, "serve", "--port", "0", "--db", db], db);
  rmSync(dir, { recursive: true, force: true });
  const floor = await runAgainst("transport floor: bare ws server, JSON.parse + fixed reply", ["--input-type=module", "-e", FLOOR_SERVER, CLI], undefined);
  console.log("\nphase            bttackler/s  floor/s  ratio | p99 ms bttackler  floor | CPU µs/decision bttackler  floor  ratio");
  service.forEach((s, i) => {
    const f = floor[i] as PhaseSummary;
    console.log(
      `${s.name.padEnd(16)} ${String(Math.round(s.rate)).padStart(11)} ${String(Math.round(f.rate)).padStart(8)} ${(s.rate / f.rate).toFixed(2).padStart(6)} |` +
        ` ${s.p99.toFixed(2).padStart(16)} ${f.p99.toFixed(2).padStart(6)} | ${String(Math.round(s.cpuPerDecisionUs)).padStart(25)} ${String(Math.round(f.cpuPerDecisionUs)).padStart(6)} ${(s.cpuPerDecisionUs / f.cpuPerDecisionUs).toFixed(2).padStart(6)}`,
    );
  });
}

void main();
