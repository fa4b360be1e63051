import { describe, expect, it } from "vitest";
import {
  ValidationError,
  configSchema,
  defaultConfig,
  payloadSchema,
  resolveConfig,
  validatePayload,
  validateReplayEvent,
} from "../../src/schema/validate.js";
import { SYMPTOM_CODES } from "../../src/diagnosis/types.js";

function messageOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ValidationError);
    return (err as Error).message;
  }
  throw new Error("expected a ValidationError");
}

describe("validatePayload", () => {
  it("accepts the full payload of docs/payload.md", () => {
    const payload = {
      step: 3,
      max_steps: 20,
      metrics: { train_loss: 0.52, train_acc: 0.83, val_loss: 0.61, val_acc: 0.8, custom: 1 },
      layers: [
        {
          name: "conv1",
          grad_abs_mean: 1.2e-3,
          grad_zero_frac: 0.01,
          grad_abs_max: 0.2,
          weight_abs_mean: 0.05,
          update_ratio: 1.1e-3,
          act_zero_frac: 0.07,
          act_saturated_frac: 0,
          bias_grad_zero_frac: 0,
        },
      ],
      non_finite: false,
      seconds: 1.23,
    };
    expect(validatePayload(payload)).toEqual(payload);
  });

  it("accepts a payload with only a step", () => {
    expect(validatePayload({ step: 0 })).toEqual({ step: 0 });
  });

  it("turns in-memory NaN and Infinity into null instead of refusing them", () => {
    expect(validatePayload({ step: 1, metrics: { train_loss: NaN }, layers: [{ grad_abs_mean: Infinity }] })).toEqual({
      step: 1,
      metrics: { train_loss: null },
      layers: [{ grad_abs_mean: null }],
    });
  });

  it.each([
    [{}, "payload.step: got nothing, expected a required field"],
    [{ step: -1 }, "payload.step: got -1, expected a number >= 0"],
    [{ step: 1.5 }, "payload.step: got 1.5, expected an integer"],
    [{ step: 0, metrics: { train_loss: "x" } }, 'payload.metrics.train_loss: got "x", expected a number or null'],
    [{ step: 0, metrics: { "my metric": "x" } }, 'payload.metrics["my metric"]: got "x", expected a number or null'],
    [{ step: 0, layers: [{ grad_abs_mean: -1 }] }, "payload.layers[0].grad_abs_mean: got -1, expected a number >= 0"],
    [{ step: 0, layers: [{}, { grad_zero_frac: 1.5 }] }, "payload.layers[1].grad_zero_frac: got 1.5, expected a number <= 1"],
    [{ step: 0, layers: [{ grad_abs_meen: 1 }] }, "payload.layers[0].grad_abs_meen: got 1, expected no such field"],
    [{ step: 0, non_finite: "no" }, 'payload.non_finite: got "no", expected a boolean'],
    [{ step: 0, epoch: 1 }, "payload.epoch: got 1, expected no such field"],
    [{ step: 0, max_steps: 0 }, "payload.max_steps: got 0, expected a number >= 1"],
  ])("refuses %j naming the field, the value and what was expected", (payload, expected) => {
    expect(messageOf(() => validatePayload(payload))).toContain(expected);
  });

  it("lists every problem, not only the first", () => {
    const err = (() => {
      try {
        validatePayload({ step: -1, metrics: { train_loss: "x" }, seconds: -2 });
      } catch (e) {
        return e as ValidationError;
      }
      throw new Error("no error");
    })();
    expect(err.issues.map((i) => i.path).sort()).toEqual(["payload.metrics.train_loss", "payload.seconds", "payload.step"]);
  });

  it("refuses a value nested deeper than 64 levels with a ValidationError, not a stack overflow", () => {
    let deep: unknown = 1;
    for (let i = 0; i < 100_000; i++) deep = [deep];
    expect(messageOf(() => validatePayload({ step: 0, metrics: { x: deep } }))).toBe(
      'payload: got "(too deep to show)", expected at most 64 levels of nested arrays and objects',
    );
    expect(messageOf(() => validateReplayEvent({ study: "s", trial: "t", payload: { step: 0, layers: [deep] } }))).toContain("event: got");
  });

  it("bounds the number of layers", () => {
    const layers = Array.from({ length: 4097 }, () => ({}));
    expect(messageOf(() => validatePayload({ step: 0, layers }))).toContain("payload.layers: got");
  });
});

describe("validateReplayEvent", () => {
  it("accepts payload and end events", () => {
    expect(validateReplayEvent({ study: "s", trial: "t", payload: { step: 0 } })).toEqual({ study: "s", trial: "t", payload: { step: 0 } });
    expect(validateReplayEvent({ study: "s", trial: "t", end: { state: "pruned" } })).toEqual({ study: "s", trial: "t", end: { state: "pruned" } });
  });

  it.each([
    [{ study: "s", trial: "t" }, "exactly one of the fields payload and end"],
    [{ study: "s", trial: "t", payload: { step: 0 }, end: { state: "complete" } }, "exactly one of the fields payload and end"],
    [{ study: "s", trial: "t", end: { state: "done" } }, 'event.end.state: got "done", expected one of "complete", "pruned", "failed"'],
    [{ trial: "t", payload: { step: 0 } }, "event.study: got nothing, expected a required field"],
    [{ study: "s", trial: 5, payload: { step: 0 } }, "event.trial: got 5, expected a string"],
    [{ study: "s", trial: "t", payload: { step: 0, layers: [{ x: 1 }] } }, "event.payload.layers[0].x: got 1, expected no such field"],
  ])("refuses %j", (event, expected) => {
    expect(messageOf(() => validateReplayEvent(event))).toContain(expected);
  });
});

describe("resolveConfig", () => {
  it("fills every rule with its defaults", () => {
    const config = defaultConfig();
    expect(Object.keys(config.rules).sort()).toEqual([...SYMPTOM_CODES].sort());
    expect(config.max_steps).toBeNull();
    expect(config.protection).toEqual({ enabled: true, metric: "train_loss", direction: "minimize", percentile: 10, min_cohort: 10 });
    expect(config.rules.NF).toMatchObject({ persistence: 1, protectable: false });
    // the calibrated defaults (docs/benchmarks.md, "Defaults"); the formula tests pin the earlier values (test/helpers.ts)
    const enabled = Object.fromEntries(SYMPTOM_CODES.map((code) => [code, config.rules[code].enabled]));
    expect(enabled).toEqual({ NF: true, EG: true, VG: true, DR: false, SC: true, HO: true, OF: false, NMG: false, DIV: true, UWR: true, SAT: false, DEAD: true, LAG: false, PROG: true });
    expect(config.rules.DIV.factor).toBe(3);
    expect(config.rules.VG).toMatchObject({ persistence: 1, protectable: true });
    expect(config.rules.UWR).toMatchObject({ persistence: 1, protectable: false });
    expect(config.rules.SC).toMatchObject({ persistence: 1, protectable: false, early_cv_min: 0.01, early_val_check: true });
    expect(config.rules.HO.cv_min).toBe(0.4);
    expect(config.rules.LAG).toMatchObject({ enabled: false, metric: "objective", direction: "auto", max_better_share: 0.5, min_cohort: 20, min_step: 3, persistence: 2, protectable: true });
    expect(config.rules.VG.stage).toEqual({ start: 0, end: 0.5 });
    expect(config.rules.HO.stage).toEqual({ start: 0.5, end: 1 });
  });

  it("keeps what the user set and defaults the rest, without modifying the input", () => {
    const input = { max_steps: 30, rules: { EG: { grad_median_max: 50 } } };
    const config = resolveConfig(input);
    expect(config.max_steps).toBe(30);
    expect(config.rules.EG.grad_median_max).toBe(50);
    expect(config.rules.EG.ratio_median_max).toBe(1000);
    expect(config.rules.EG.enabled).toBe(true);
    expect(input).toEqual({ max_steps: 30, rules: { EG: { grad_median_max: 50 } } });
  });

  it("gives independent objects on every call", () => {
    const a = defaultConfig();
    a.rules.HO.metrics.push("x");
    expect(defaultConfig().rules.HO.metrics).toEqual(["train_loss"]);
  });

  it.each([
    [{ rules: { EG: { grad_median_maxx: 1 } } }, "config.rules.EG.grad_median_maxx: got 1, expected no such field"],
    [{ rules: { XX: {} } }, "config.rules.XX: got {}, expected no such field"],
    [{ protection: { direction: "up" } }, 'config.protection.direction: got "up", expected one of "minimize", "maximize"'],
    [{ protection: { percentile: 120 } }, "config.protection.percentile: got 120, expected a number <= 100"],
    [{ rules: { VG: { persistence: 0 } } }, "config.rules.VG.persistence: got 0, expected a number >= 1"],
    [{ rules: { SC: { stage: { start: 0.6, end: 0.5 } } } }, "config.rules.SC.stage: got {\"start\":0.6,\"end\":0.5}, expected start < end"],
    [{ max_steps: "20" }, 'config.max_steps: got "20", expected an integer or null'],
  ])("refuses %j naming the field", (config, expected) => {
    expect(messageOf(() => resolveConfig(config))).toContain(expected);
  });


});

describe.each([
  ["config.v1", configSchema],
  ["payload.v1", payloadSchema],
])("schema %s", (_name, schema) => {
  it("documents every field with a description", () => {
    const missing: string[] = [];
    const walk = (node: Record<string, unknown>, path: string): void => {
      const props = node.properties as Record<string, Record<string, unknown>> | undefined;
      for (const [key, child] of Object.entries(props ?? {})) {
        if (typeof child.description !== "string" || child.description.length < 10) missing.push(`${path}.${key}`);
        walk(child, `${path}.${key}`);
      }
      const items = node.items as Record<string, unknown> | undefined;
      if (items) walk(items, `${path}[]`);
    };
    walk(schema, "");
    expect(missing).toEqual([]);
  });
});
