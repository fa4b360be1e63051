/**
 * Shared helpers for the diagnosis tests: configs with overrides, payload
 * builders (10-layer payloads, loss curves), a rule context built from a
 * payload history, and a seeded PRNG (no Math.random anywhere in the tests).
 */
import { readFileSync } from "node:fs";
import { DiagnosisEngine } from "../src/diagnosis/engine.js";
import type { LayerField, RuleContext, Series } from "../src/diagnosis/rule.js";
import type {
  LayerIndicators,
  Measured,
  PayloadV1,
  StudyConfig,
  Symptom,
  SymptomCode,
  Verdict,
} from "../src/diagnosis/types.js";
import { SYMPTOM_CODES } from "../src/diagnosis/types.js";
import { resolveConfig } from "../src/schema/validate.js";

/* ---------------------------------------------------------------- config */

export type DeepPartial<T> = T extends readonly (infer U)[]
  ? U[]
  : T extends object
    ? { [K in keyof T]?: DeepPartial<T[K]> }
    : T;

export type ConfigOverrides = DeepPartial<StudyConfig>;

/**
 * The rule options as they were before the defaults were calibrated on recorded traces
 * (docs/benchmarks.md, "Defaults"), read from docs/examples/pre-calibration.json. The tests of
 * each family's formula and of the engine's
 * mechanics (persistence, protection, stages) were written against these values and pin
 * them, so that they keep testing the mechanics whatever the defaults become; the shipped
 * defaults are checked on `resolveConfig({})` in test/schema/validate.test.ts.
 */
export const PRE_CALIBRATION_RULES = (
  JSON.parse(readFileSync(new URL("../docs/examples/pre-calibration.json", import.meta.url), "utf8")) as { rules: NonNullable<ConfigOverrides["rules"]> }
).rules;

/** Per family, the pinned options under the given ones. */
function pinnedRules(overrides: ConfigOverrides): Record<string, Record<string, unknown>> {
  const given = (overrides.rules ?? {}) as Record<string, Record<string, unknown> | undefined>;
  const pinned = PRE_CALIBRATION_RULES as Record<string, Record<string, unknown> | undefined>;
  const rules: Record<string, Record<string, unknown>> = {};
  for (const code of SYMPTOM_CODES) rules[code] = { ...pinned[code], ...given[code] };
  return rules;
}

/** A fully resolved config: schema defaults, PRE_CALIBRATION_RULES over them, the overrides over both (validated by the schema). */
export function makeConfig(overrides: ConfigOverrides = {}): StudyConfig {
  return resolveConfig({ ...overrides, rules: pinnedRules(overrides) } as ConfigOverrides);
}

/** Like makeConfig, but only the listed families are enabled (the others are switched off). */
export function onlyRules(codes: readonly SymptomCode[], overrides: ConfigOverrides = {}): StudyConfig {
  const rules = pinnedRules(overrides);
  for (const code of SYMPTOM_CODES) rules[code] = { ...rules[code], enabled: codes.includes(code) };
  return resolveConfig({ ...overrides, rules } as ConfigOverrides);
}

export function makeEngine(overrides: ConfigOverrides = {}): DiagnosisEngine {
  return new DiagnosisEngine(makeConfig(overrides));
}

/* -------------------------------------------------------------- payloads */

/** Healthy per-layer indicators of a ReLU network in mid-training. */
export const HEALTHY_LAYER: Readonly<Required<Omit<LayerIndicators, "name">>> = {
  grad_abs_mean: 1e-3,
  grad_zero_frac: 0.05,
  grad_abs_max: 5e-2,
  weight_abs_mean: 5e-2,
  update_ratio: 5e-2,
  act_zero_frac: 0.05,
  act_saturated_frac: 0.01,
  bias_grad_zero_frac: 0.02,
};

export type LayerOverrides = Partial<Record<LayerField, Measured | undefined | readonly (Measured | undefined)[]>>;

/**
 * `n` layers named l0..l{n-1} (input side first), healthy unless overridden. An override is
 * one value for every layer or an array with one value per layer; `undefined` removes the field.
 */
export function makeLayers(n: number, overrides: LayerOverrides = {}, base: Partial<LayerIndicators> = HEALTHY_LAYER): LayerIndicators[] {
  const layers: LayerIndicators[] = [];
  for (let i = 0; i < n; i++) {
    const layer: LayerIndicators = { name: `l${i}`, ...base };
    for (const [field, value] of Object.entries(overrides) as [LayerField, LayerOverrides[LayerField]][]) {
      const v = Array.isArray(value) ? (value as readonly (Measured | undefined)[])[i] : (value as Measured | undefined);
      if (v === undefined) delete layer[field];
      else layer[field] = v;
    }
    layers.push(layer);
  }
  return layers;
}

/** Ten healthy layers, with overrides. */
export function layers10(overrides: LayerOverrides = {}): LayerIndicators[] {
  return makeLayers(10, overrides);
}

/** Layers that carry only the given field (one value per layer, input side first). */
export function layersWith(field: LayerField, values: readonly Measured[]): LayerIndicators[] {
  return values.map((v, i) => ({ name: `l${i}`, [field]: v }));
}

/** One payload per value of a metric curve (steps 0, 1, 2, ...), carrying only that metric. */
export function curve(values: readonly Measured[], metric = "train_loss", extra: Partial<PayloadV1> = {}): PayloadV1[] {
  return values.map((v, step) => ({ ...extra, step, metrics: { [metric]: v } }));
}

/** One payload per step with train and val losses (metrics only). */
export function curves(train: readonly Measured[], val: readonly Measured[], extra: Partial<PayloadV1> = {}): PayloadV1[] {
  const n = Math.max(train.length, val.length);
  const out: PayloadV1[] = [];
  for (let step = 0; step < n; step++) {
    const metrics: Record<string, Measured> = {};
    if (train[step] !== undefined) metrics.train_loss = train[step] as Measured;
    if (val[step] !== undefined) metrics.val_loss = val[step] as Measured;
    out.push({ ...extra, step, metrics });
  }
  return out;
}

/* ----------------------------------------------------------------- rules */

/**
 * The context a rule sees at the last payload of `history`: the series hold the
 * finite metric values of every payload in order (as the engine records them).
 */
export function ctxFrom(history: readonly PayloadV1[], maxSteps?: number): RuleContext {
  const last = history[history.length - 1];
  if (last === undefined) throw new Error("ctxFrom needs at least one payload");
  const series = new Map<string, { steps: number[]; values: number[] }>();
  for (const p of history) {
    for (const [name, v] of Object.entries(p.metrics ?? {})) {
      if (typeof v !== "number" || !Number.isFinite(v)) continue;
      const s = series.get(name) ?? { steps: [], values: [] };
      series.set(name, s);
      s.steps.push(p.step);
      s.values.push(v);
    }
  }
  const empty: Series = { steps: [], values: [] };
  return {
    step: last.step,
    maxSteps: maxSteps ?? last.max_steps,
    payload: last,
    series: (metric) => series.get(metric) ?? empty,
    peers: () => undefined,
    outcomes: () => undefined,
  };
}

/** The context of a single payload (no history). */
export function ctxOf(payload: PayloadV1, maxSteps?: number): RuleContext {
  return ctxFrom([payload], maxSteps);
}

/* ---------------------------------------------------------------- engine */

/** Reports payloads of one trial in order and returns the verdicts. */
export function feed(engine: DiagnosisEngine, trial: string, payloads: readonly PayloadV1[]): Verdict[] {
  return payloads.map((p) => engine.report(trial, p));
}

/** `CODE:rule:action` for every symptom of a verdict, in verdict order. */
export function tags(verdict: Verdict): string[] {
  return verdict.symptoms.map((s: Symptom) => `${s.code}:${s.rule}:${s.action}`);
}

/** The symptoms of one family in a verdict. */
export function family(verdict: Verdict, code: SymptomCode): Symptom[] {
  return verdict.symptoms.filter((s) => s.code === code);
}

/** The step of the first stopping verdict, or undefined. */
export function firstStop(verdicts: readonly Verdict[]): number | undefined {
  return verdicts.find((v) => v.stop)?.step;
}

/**
 * Reports one value of the protection metric for each of `values.length` other
 * trials at `step` (trial ids `${prefix}${i}`), so that the cohort at that step
 * holds these values.
 */
export function fillCohort(
  engine: DiagnosisEngine,
  step: number,
  values: readonly Measured[],
  metric = "train_loss",
  prefix = `cohort-s${step}-`,
): void {
  values.forEach((v, i) => {
    engine.report(`${prefix}${i}`, { step, metrics: { [metric]: v } });
  });
}

/* ------------------------------------------------------------------ PRNG */

/** mulberry32: a small seeded PRNG with uniform output in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Standard normal deviates from a uniform PRNG (Box-Muller). */
export function gaussian(rng: () => number): () => number {
  return () => {
    const u = 1 - rng(); // (0, 1]
    const v = rng();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  };
}

/* --------------------------------------------------------- healthy trial */

/**
 * A realistic healthy trial: train loss 2.3*exp(-0.3 t) + 0.1 with ~1 % noise,
 * val loss slightly above, 10 layers with sane gradients (~1e-3), zero fractions
 * ~0.05 and update ratios ~0.05.
 */
export function healthyTrial(seed: number, steps = 20, maxSteps: number | undefined = 20): PayloadV1[] {
  const rng = mulberry32(seed);
  const n = gaussian(rng);
  const jitter = (x: number, rel: number): number => x * (1 + rel * n());
  const out: PayloadV1[] = [];
  for (let t = 0; t < steps; t++) {
    const train = 2.3 * Math.exp(-0.3 * t) + 0.1;
    const payload: PayloadV1 = {
      step: t,
      metrics: {
        train_loss: jitter(train, 0.01),
        val_loss: jitter(train * 1.08 + 0.05, 0.01),
        train_acc: Math.min(0.99, 0.1 + 0.85 * (1 - Math.exp(-0.3 * t))),
        val_acc: Math.min(0.98, 0.1 + 0.8 * (1 - Math.exp(-0.3 * t))),
      },
      layers: makeLayers(10, {
        grad_abs_mean: Array.from({ length: 10 }, () => jitter(1e-3, 0.2)),
        grad_zero_frac: Array.from({ length: 10 }, () => jitter(0.05, 0.2)),
        update_ratio: Array.from({ length: 10 }, () => jitter(0.05, 0.2)),
        act_zero_frac: Array.from({ length: 10 }, () => jitter(0.05, 0.2)),
      }),
      non_finite: false,
      seconds: jitter(1.2, 0.05),
    };
    if (maxSteps !== undefined) payload.max_steps = maxSteps;
    out.push(payload);
  }
  return out;
}

/* --------------------------------------------------------- random study */

export type StudyEvent =
  | { trial: string; payload: PayloadV1 }
  | { trial: string; end: "complete" | "pruned" | "failed" };

const KINDS = ["healthy", "healthy", "healthy", "slow", "exploding", "vanishing", "nan", "oscillating", "diverging", "flat", "overfitting", "dead"] as const;

/**
 * A pseudo-random study: `trials` trials of up to `steps` steps, of mixed health
 * (healthy, exploding, vanishing, NaN, oscillating, diverging, flat, overfitting,
 * dead units), interleaved step by step in a shuffled order, each trial ending
 * with an end event. Fully determined by `seed`.
 */
export function randomStudy(seed: number, trials = 200, steps = 20): StudyEvent[] {
  const rng = mulberry32(seed);
  const n = gaussian(rng);
  const int = (lo: number, hi: number): number => lo + Math.floor(rng() * (hi - lo + 1));
  const plans = Array.from({ length: trials }, (_, i) => ({
    id: `trial-${i}`,
    kind: KINDS[int(0, KINDS.length - 1)] as (typeof KINDS)[number],
    rate: 0.05 + 0.4 * rng(),
    scale: 0.5 + 3 * rng(),
    onset: int(2, 14),
    length: int(Math.floor(steps / 2), steps),
    grad: 10 ** (-4 + 2 * rng()),
  }));
  const events: StudyEvent[] = [];
  for (let step = 0; step < steps; step++) {
    const order = plans.filter((p) => step < p.length);
    for (let i = order.length - 1; i > 0; i--) {
      const j = int(0, i);
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    for (const p of order) {
      const bad = step >= p.onset;
      let train = p.scale * Math.exp(-p.rate * step) + 0.05 * p.scale;
      let val = train * 1.1;
      let grad = p.grad;
      let zero = 0.05;
      let dead = 0.05;
      let nonFinite = false;
      switch (p.kind) {
        case "slow":
          train = p.scale * (1 - 0.002 * step);
          val = train * 1.05;
          break;
        case "exploding":
          if (bad) grad = 10 ** (4 + step - p.onset);
          break;
        case "vanishing":
          grad = 1e-7;
          break;
        case "nan":
          if (bad) nonFinite = true;
          break;
        case "oscillating":
          train *= 1 + (step % 2 === 0 ? -0.5 : 0.8);
          val = train * 1.2;
          break;
        case "diverging":
          if (bad) train = p.scale * 0.5 * 1.6 ** (step - p.onset + 2);
          break;
        case "flat":
          train = p.scale;
          val = p.scale * 1.01;
          break;
        case "overfitting":
          if (bad) val = (p.scale * Math.exp(-p.rate * p.onset) + 0.05 * p.scale) * 1.1 * (1 + 0.1 * (step - p.onset));
          break;
        case "dead":
          if (bad) {
            zero = 0.9;
            dead = 0.95;
          }
          break;
        case "healthy":
          break;
      }
      const jitter = (x: number, rel: number): number => x * (1 + rel * n());
      const payload: PayloadV1 = {
        step,
        max_steps: steps,
        metrics: {
          train_loss: nonFinite ? null : jitter(train, 0.01),
          val_loss: jitter(val, 0.01),
          val_acc: Math.max(0, Math.min(1, 0.9 - 0.3 * Math.log10(1 + train) + 0.02 * n())),
        },
        layers: makeLayers(10, {
          grad_abs_mean: Array.from({ length: 10 }, () => jitter(grad, 0.2)),
          grad_zero_frac: Array.from({ length: 10 }, () => Math.min(1, Math.abs(jitter(zero, 0.1)))),
          act_zero_frac: Array.from({ length: 10 }, () => Math.min(1, Math.abs(jitter(dead, 0.1)))),
          update_ratio: Array.from({ length: 10 }, () => Math.abs(jitter(0.05, 0.2))),
        }),
        non_finite: nonFinite,
        seconds: Math.abs(jitter(1, 0.1)),
      };
      events.push({ trial: p.id, payload });
      if (step === p.length - 1) events.push({ trial: p.id, end: "complete" });
    }
  }
  return events;
}

/** Feeds a study's events to an engine; returns the verdicts in event order. */
export function runStudy(engine: DiagnosisEngine, events: readonly StudyEvent[]): Verdict[] {
  const verdicts: Verdict[] = [];
  for (const e of events) {
    if ("payload" in e) verdicts.push(engine.report(e.trial, e.payload));
    else engine.end(e.trial, e.end);
  }
  return verdicts;
}
