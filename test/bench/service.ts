/**
 * `npm run bench:service` — the service under load, in its own process.
 *
 * N WebSocket clients (default 1,000, one per trial) × 20 steps of
 * trial.reportAndAssess with 10-layer payloads; persistence on (a SQLite file).
 * Two phases against the same service:
 *  - paced: every client reports once per `1000 * N / RATE` ms, so the offered load
 *    is RATE decisions/s (default 10,000) — this is the latency figure (p50/p99);
 *  - saturation: every client sends its next report as soon as the previous one is
 *    answered — this is the throughput figure (decisions/s).
 * Lost = reports that were acknowledged but are not in the database afterwards,
 * plus calls that failed. Usage: npm run bench:service -- [--clients N] [--rate R] [--steps S]
 */
import { spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import Database from "better-sqlite3";
import WebSocket from "ws";

const { values } = parseArgs({
  options: {
    clients: { type: "string", default: "1000" },
    rate: { type: "string", default: "10000" },
    steps: { type: "string", default: "20" },
  },
});
const CLIENTS = Number(values.clients);
const RATE = Number(values.rate);
const STEPS = Number(values.steps);
const CLI = fileURLToPath(new URL("../../dist/cli/main.js", import.meta.url));

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
      const reply = JSON.parse(data.toString()) as { id: number; result?: unknown; error?: unknown };
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
  call(method: string, params: unknown): Promise<{ result?: unknown; error?: unknown }> {
    const id = this.next++;
    return new Promise((resolve) => {
      this.waiting.set(id, resolve);
      this.ws.send(JSON.stringify({ jsonrpc: "2.0", id, method, params }));
    });
  }
  close(): void {
    this.ws.close();
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const q = (sorted: number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? NaN;

async function phase(name: string, clients: Client[], study: string, intervalMs: number): Promise<{ acked: Set<string>; failed: number }> {
  const latencies: number[] = [];
  const acked = new Set<string>();
  let failed = 0;
  const started = performance.now();
  await Promise.all(
    clients.map(async (c, t) => {
      if (intervalMs > 0) await sleep((intervalMs * t) / clients.length);
      for (let step = 0; step < STEPS; step++) {
        const due = performance.now() + intervalMs;
        const t0 = performance.now();
        const reply = await c.call("trial.reportAndAssess", { study, trial: `t${t}`, payload: payload(step, t) });
        latencies.push(performance.now() - t0);
        if (reply.error) failed++;
        else acked.add(`${study}/t${t}@${step}`);
        if (intervalMs > 0) await sleep(Math.max(0, due - performance.now()));
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  console.log(
    `${name.padEnd(11)} ${String(latencies.length).padStart(6)} decisions in ${seconds.toFixed(2)} s = ${Math.round(latencies.length / seconds)} decisions/s;` +
      ` latency p50 ${q(latencies, 0.5).toFixed(2)} ms, p99 ${q(latencies, 0.99).toFixed(2)} ms, max ${q(latencies, 1).toFixed(2)} ms; failed ${failed}`,
  );
  return { acked, failed };
}

async function main(): Promise<void> {
  const db = join(mkdtempSync(join(tmpdir(), "bttackler-bench-")), "bench.db");
  const child = spawn(process.execPath, [...(process.env.BENCH_NODE_ARGS ? process.env.BENCH_NODE_ARGS.split(" ") : []), CLI, "serve", "--port", "0", "--db", db], { stdio: ["ignore", "ignore", "pipe"] });
  const url = await new Promise<string>((resolve, reject) => {
    let buf = "";
    child.stderr.on("data", (d: Buffer) => {
      buf += d.toString();
      const m = /"address":"(ws:[^"]+)"/.exec(buf);
      if (m?.[1]) resolve(m[1]);
    });
    child.once("exit", (code) => reject(new Error(`serve exited with ${String(code)}: ${buf}`)));
  });
  console.log(`bttackler service benchmark: ${CLIENTS} clients × ${STEPS} steps, 10-layer payloads, SQLite file, node ${process.version}`);
  const clients: Client[] = [];
  for (let i = 0; i < CLIENTS; i++) clients.push(await Client.open(url));
  const paced = await phase("paced", clients, "paced", (1000 * CLIENTS) / RATE);
  const saturated = await phase("saturation", clients, "saturation", 0);
  for (const c of clients) c.close();
  child.kill("SIGTERM");
  await new Promise((r) => child.once("exit", r));
  const stored = new Set(
    (new Database(db, { readonly: true }).prepare("SELECT study, trial, step FROM events WHERE kind = 'payload'").all() as { study: string; trial: string; step: number }[]).map(
      (r) => `${r.study}/${r.trial}@${r.step}`,
    ),
  );
  const all = [...paced.acked, ...saturated.acked];
  const lost = all.filter((k) => !stored.has(k)).length + paced.failed + saturated.failed;
  console.log(`offered rate in the paced phase: ${RATE} decisions/s; acknowledged ${all.length}, stored ${stored.size}, lost ${lost}`);
}

void main();
