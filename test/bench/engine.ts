/**
 * `npm run bench:engine` — time per decision of the diagnosis engine.
 *
 * 10-layer payloads (every layer field set), max_steps 20, default config.
 * 1,000 trials × 20 steps build the cohort first (also the JIT warm-up); then
 * 1,000 more trials × 20 steps are measured one decision at a time, so every
 * measured decision sees a cohort of at least 1,000 trials at its step.
 * Two figures: `engine.report` alone, and the service's path for one frame
 * (JSON text with NaN tokens allowed → schema validation → engine.report).
 */
import { DiagnosisEngine } from "../../src/diagnosis/engine.js";
import type { PayloadV1 } from "../../src/diagnosis/types.js";
import { parseJson } from "../../src/schema/json.js";
import { resolveConfig, validatePayload } from "../../src/schema/validate.js";
import { mulberry32 } from "../helpers.js";

const TRIALS = 1000;
const STEPS = 20;
const LAYERS = 10;

function payload(rand: () => number, step: number, quality: number): PayloadV1 {
  const loss = (2.3 * Math.exp(-0.25 * quality * step) + 0.05) * (1 + 0.05 * (rand() - 0.5));
  return {
    step,
    max_steps: STEPS,
    metrics: { train_loss: loss, val_loss: loss * (1.05 + 0.1 * rand()), train_acc: 1 - loss / 2.4, val_acc: 1 - loss / 2.2 },
    layers: Array.from({ length: LAYERS }, (_, i) => ({
      name: `dense_${i}`,
      grad_abs_mean: 1e-3 * (0.5 + rand()),
      grad_zero_frac: 0.1 * rand(),
      grad_abs_max: 0.05 * (0.5 + rand()),
      weight_abs_mean: 0.05,
      update_ratio: 0.02 * (0.5 + rand()),
      act_zero_frac: 0.05 * rand(),
      act_saturated_frac: 0,
      bias_grad_zero_frac: 0.02 * rand(),
    })),
    non_finite: false,
    seconds: 1 + rand(),
  };
}

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
}

function summary(label: string, ns: number[]): string {
  const us = ns.map((x) => x / 1000).sort((a, b) => a - b);
  return `${label.padEnd(38)} median ${quantile(us, 0.5).toFixed(2).padStart(7)} µs   p99 ${quantile(us, 0.99).toFixed(2).padStart(7)} µs   (${us.length} decisions)`;
}

function measure(path: "report" | "frame"): number[] {
  const rand = mulberry32(42);
  const engine = new DiagnosisEngine(resolveConfig({ max_steps: STEPS }));
  const quality = (): number => 0.5 + rand();
  for (let t = 0; t < TRIALS; t++) {
    const q = quality();
    for (let s = 0; s < STEPS; s++) engine.report(`warm-${t}`, payload(rand, s, q));
  }
  const times: number[] = [];
  for (let t = 0; t < TRIALS; t++) {
    const q = quality();
    for (let s = 0; s < STEPS; s++) {
      const p = payload(rand, s, q);
      if (path === "report") {
        const start = process.hrtime.bigint();
        engine.report(`t-${t}`, p);
        times.push(Number(process.hrtime.bigint() - start));
      } else {
        const frame = JSON.stringify(p);
        const start = process.hrtime.bigint();
        engine.report(`t-${t}`, validatePayload(parseJson(frame)));
        times.push(Number(process.hrtime.bigint() - start));
      }
    }
  }
  return times;
}

console.log(`bttackler engine benchmark: ${LAYERS}-layer payloads, cohort of ≥ ${TRIALS} trials at every measured step, node ${process.version}`);
console.log(summary("engine.report", measure("report")));
console.log(summary("parse + validate + engine.report", measure("frame")));
