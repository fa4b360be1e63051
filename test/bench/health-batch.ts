/**
 * How long one batch of 1,000 `service.health` calls holds the service (docs/reliability.md,
 * the fuzzer's finding): starts `bttackler serve` (`:memory:`), sends three such batches one
 * after the other on one connection and prints the time to each reply.
 *
 *   npx tsx test/bench/health-batch.ts      (after npm run build)
 */
import WebSocket from "ws";
import { startService, stopService } from "../serve-process.js";

const service = await startService({ args: ["--db", ":memory:"] });
const ws = new WebSocket(service.url);
await new Promise((resolve) => ws.once("open", resolve));
const batch = JSON.stringify(Array.from({ length: 1000 }, (_, id) => ({ jsonrpc: "2.0", id, method: "service.health" })));
for (let i = 1; i <= 3; i++) {
  const started = performance.now();
  await new Promise((resolve) => {
    ws.once("message", resolve);
    ws.send(batch);
  });
  console.log(`batch ${i}: 1,000 service.health calls answered in ${(performance.now() - started).toFixed(1)} ms`);
}
ws.close();
await stopService(service);
