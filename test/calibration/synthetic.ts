/**
 * Synthetic recorded trials for the calibration tests, built from payload v1 objects
 * (losses and val_acc only: the gradient rules stay silent):
 * - "spiky": top accuracy, but the train loss jumps to 2.5x its best for two steps
 *   (steps 2-3) and recovers: DIV (factor 2, persistence 2) false-kills it by default;
 * - "flat": a loss that never moves, chance accuracy: hopeless, caught by SC only;
 * - "normal": a smooth decay, middling accuracy: nothing should stop it.
 */
import type { PayloadV1 } from "../../src/diagnosis/types.js";
import type { CalibrationTrial } from "../../src/calibration/index.js";
import { TRACE_FORMAT, type TraceTrial } from "../../src/replay/trace-format.js";

export type Kind = "spiky" | "flat" | "normal";
export const STEPS = 12;

export function payloads(kind: Kind, index: number): PayloadV1[] {
  const acc = kind === "spiky" ? 0.95 + 0.001 * index : kind === "flat" ? 0.1 : 0.6 + 0.001 * index;
  const out: PayloadV1[] = [];
  for (let step = 0; step < STEPS; step++) {
    const smooth = 2.3 * Math.exp(-0.3 * step) + 0.1 + 0.0001 * index;
    const loss = kind === "flat" ? 2.302585 : kind === "spiky" && (step === 2 || step === 3) ? 2.5 * (2.3 * Math.exp(-0.3) + 0.1) : smooth;
    const progress = (step + 1) / STEPS;
    out.push({
      step,
      max_steps: STEPS,
      metrics: { train_loss: loss, val_loss: loss * 1.1, val_acc: kind === "flat" ? 0.1 : acc * (0.5 + 0.5 * progress) },
      non_finite: false,
    });
  }
  return out;
}

/** A study: per index a kind, 8 spiky, 8 flat and 16 normal per parity (so both splits hold each kind). */
export function kinds(): Kind[] {
  const out: Kind[] = [];
  for (let i = 0; i < 64; i++) {
    const k = Math.floor(i / 2) % 4;
    out.push(k === 0 ? "spiky" : k === 1 ? "flat" : "normal");
  }
  return out;
}

export function trials(kindOf: (index: number) => Kind = (i) => kinds()[i] as Kind): CalibrationTrial[] {
  return kinds().map((_, index) => ({ index, payloads: payloads(kindOf(index), index), status: "ok" as const }));
}

/** The same trials as bttackler.trace.v1 lines (for the CLI). */
export function traceLines(list: CalibrationTrial[]): string {
  return list
    .map((t) => {
      const line: TraceTrial = {
        format: TRACE_FORMAT,
        dataset: "mnist",
        search_space: 1,
        seed: 1,
        model: "mlp",
        backend: "synthetic",
        max_epochs: STEPS,
        split: { train: 1, val: 1, test: 1, seed: 1 },
        reporter: { sample_every: 1, probe: 1 },
        trial: t.index,
        config: { lr: 0.01 },
        epochs: t.payloads.map((payload) => ({ payload, test_acc: 0.5, seconds: 1, cpu_seconds: 1, eval_seconds: 0 })),
        status: t.status,
        first_non_finite_step: null,
        final: { val_acc: (t.payloads[t.payloads.length - 1]?.metrics?.val_acc as number | undefined) ?? null, test_acc: 0.5 },
        train_seconds: STEPS,
        train_cpu_seconds: STEPS,
        seconds: STEPS,
        schema_failures: 0,
        recorded_at: "2026-11-27T00:00:00.000Z",
        tfjs: "none",
        node: "v20",
      };
      return `${JSON.stringify(line)}\n`;
    })
    .join("");
}
