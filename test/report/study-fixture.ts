/**
 * A study recorded by a real `bttackler serve` (the built CLI) into a temporary database,
 * for the report's CLI and browser tests: healthy trials of several qualities that complete,
 * one whose gradients explode (stopped by EG), one whose loss goes non-finite (stopped by NF),
 * one still running, and a second, small study. The names carry HTML to prove the page escapes them.
 */
import { RpcClient, payload, serve, tempDb, type ServeProcess } from "../service/harness.js";

export const STUDY = "mnist <b>&amp; friends</b>";
export const OTHER_STUDY = "second";
export const EXPLODING = "t-explode</script><img src=x onerror=alert(1)>";
export const NON_FINITE = "t-nan";
export const RUNNING = "t-running";
export const HEALTHY = ["t-0", "t-1", "t-2", "t-3", "t-4"];
export const STEPS = 12;

export interface RecordedStudy {
  db: string;
  service: ServeProcess;
  client: RpcClient;
  /** The stop step of each stopped trial, as the service answered. */
  stops: Map<string, number>;
  /** Stops the service (SIGTERM) and waits for it to exit. */
  stop(): Promise<void>;
}

function trialPayload(trial: string, index: number, step: number): Record<string, unknown> {
  const p = payload(step, 0.4 + index / 6, 8) as { metrics: Record<string, number | null>; layers: { grad_abs_mean: number }[]; max_steps: number };
  p.max_steps = STEPS;
  // gradients smaller towards the input and slowly shrinking, as in a real net; the exploding trial's grow 100x a step from step 2
  const growth = trial === EXPLODING && step >= 2 ? 100 ** (step - 1) : 1;
  p.layers.forEach((l, i) => (l.grad_abs_mean = 1e-3 * 10 ** (0.25 * (i - 4)) * (1 - 0.04 * step) * (1 + 0.1 * index) * growth));
  if (trial === NON_FINITE && step >= 4) p.metrics.train_loss = null;
  return p;
}

/** Records the studies; the service keeps running (a report must read its database meanwhile) until `stop`. */
export async function recordStudy(): Promise<RecordedStudy> {
  const db = tempDb();
  const service = await serve(["--db", db]);
  const client = await RpcClient.connect(service.url);
  await client.call("study.open", { study: STUDY, config: { max_steps: STEPS } });
  const trials = [...HEALTHY, EXPLODING, NON_FINITE, RUNNING];
  const stops = new Map<string, number>();
  for (let step = 0; step < STEPS; step++) {
    await Promise.all(
      trials.map(async (trial, index) => {
        if (stops.has(trial) || (trial === RUNNING && step >= STEPS / 2)) return;
        const verdict = await client.call<{ stop: boolean }>("trial.reportAndAssess", { study: STUDY, trial, payload: trialPayload(trial, index, step) });
        if (verdict.stop) stops.set(trial, step);
      }),
    );
  }
  for (const trial of trials) {
    if (trial === RUNNING) continue;
    await client.call("trial.end", { study: STUDY, trial, state: stops.has(trial) ? "pruned" : "complete" });
  }
  await client.call("study.open", { study: OTHER_STUDY });
  for (let step = 0; step < 3; step++) await client.call("trial.report", { study: OTHER_STUDY, trial: "only", payload: payload(step) });
  return {
    db,
    service,
    client,
    stops,
    async stop() {
      client.close();
      service.child.kill("SIGTERM");
      await service.exited;
    },
  };
}
