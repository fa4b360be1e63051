/**
 * The engine mechanics that the layer-statistic families share (DEAD, SAT, DR), one table: not
 * checked before min_step, then two detections to stop; applied with max_steps unknown and past
 * it; reset by a healthy step; no stop of a protected trial. Each family's formula is tested in
 * its own file (dead-units, saturation, dying-relu).
 */
import { describe, expect, it } from "vitest";
import type { PayloadV1 } from "../../src/diagnosis/types.js";
import { feed, fillCohort, layers10, makeEngine, tags } from "../helpers.js";
import type { LayerFamilyRow } from "./rule-fixture.js";

/** Nine layers with `hidden`, then the output layer with `output` (DEAD and SAT leave the output layer out). */
const net = (hidden: number, output: number): number[] => [...Array<number>(9).fill(hidden), output];

const ROWS: LayerFamilyRow[] = [
  {
    code: "DEAD",
    finding: "dead_units",
    broken: (step, extra = {}) => ({ step, layers: layers10({ act_zero_frac: net(0.8, 0.1) }), ...extra }),
    minStep: 1,
  },
  {
    code: "SAT",
    finding: "saturated_units",
    broken: (step, extra = {}) => ({ step, layers: layers10({ act_saturated_frac: net(0.6, 0.99) }), ...extra }),
    minStep: 1,
  },
  {
    code: "DR",
    finding: "grad_zero_frac_high",
    // the input layer first (left out), then nine layers with zero gradients
    broken: (step, extra = {}) => ({ step, layers: layers10({ grad_zero_frac: [0.05, ...Array<number>(9).fill(0.8)] }), ...extra }),
    minStep: 4,
  },
];

describe.each(ROWS)("$code in the engine", ({ code, finding, broken, minStep }) => {
  it(`is not checked before min_step ${minStep}, then needs two detections`, () => {
    const verdicts = feed(makeEngine(), "t", Array.from({ length: minStep + 2 }, (_, s) => broken(s)));
    expect(verdicts.map((v) => tags(v).join(","))).toEqual([...Array<string>(minStep).fill(""), `${code}:${finding}:watch`, `${code}:${finding}:stop`]);
    expect(verdicts[minStep + 1]?.stopped_at).toBe(minStep + 1);
  });

  it("applies at every step with max_steps unknown, and past max_steps", () => {
    const engine = makeEngine();
    expect(feed(engine, "a", [broken(11), broken(12)]).map((v) => v.stop)).toEqual([false, true]);
    expect(feed(engine, "b", [broken(30), broken(31)]).map((v) => v.stop)).toEqual([false, true]);
    expect(feed(engine, "c", [broken(30, { max_steps: 20 }), broken(31)]).map((v) => v.stop)).toEqual([false, true]);
  });

  it("resets after a healthy step", () => {
    const healthy: PayloadV1 = { step: minStep + 1, layers: layers10() };
    const verdicts = feed(makeEngine(), "t", [broken(minStep), healthy, broken(minStep + 2), broken(minStep + 3)]);
    expect(verdicts.map((v) => v.stop)).toEqual([false, false, false, true]);
    expect(verdicts[2]?.symptoms[0]?.count).toBe(1);
  });

  it("does not stop a protected trial", () => {
    const engine = makeEngine();
    fillCohort(engine, minStep, [2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    const verdicts = feed(engine, "best", [broken(minStep, { metrics: { train_loss: 1 } }), broken(minStep + 1, { metrics: { train_loss: 0.9 } })]);
    expect(verdicts.map((v) => v.protected)).toEqual([true, true]);
    expect(tags(verdicts[1]!)).toEqual([`${code}:${finding}:protected`]);
    expect(verdicts[1]?.stop).toBe(false);
  });
});
