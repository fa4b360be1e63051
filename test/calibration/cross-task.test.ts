/** Calibration across tasks (leave-one-task-out) and outcomes of a minimized objective, on synthetic traces. */
import { describe, expect, it } from "vitest";
import { calibrateAcrossTasks, falseKillRate, finalScore, isHopeless, outcomes, type CalibrationTrial } from "../../src/calibration/index.js";
import type { TaskGoal } from "../../src/replay/trace-format.js";
import { makeConfig } from "../helpers.js";
import { trials } from "./synthetic.js";

const LOSS_GOAL: TaskGoal = { metric: "val_loss", direction: "minimize", hopeless_at: 2.3 };

/** The synthetic study as a loss-only task: no val_acc, val_loss minimized. */
function lossOnly(list: CalibrationTrial[]): CalibrationTrial[] {
  return list.map((t) => ({
    ...t,
    goal: LOSS_GOAL,
    payloads: t.payloads.map((p) => ({ ...p, metrics: { train_loss: p.metrics?.train_loss ?? null, val_loss: p.metrics?.val_loss ?? null } })),
  }));
}

describe("outcomes of a minimized objective", () => {
  it("score lower losses higher, call a loss no better than hopeless_at hopeless, and a non-finite end the worst", () => {
    const at = (index: number, val_loss: number | null): CalibrationTrial => ({ index, status: "ok", goal: LOSS_GOAL, payloads: [{ step: 0, metrics: { val_loss } }] });
    const list = [at(0, 2.5), at(1, 0.4), at(2, 0.9), at(3, 1.2), at(4, null)];
    expect(list.map(finalScore)).toEqual([-2.5, -0.4, -0.9, -1.2, -Infinity]);
    expect(list.map(isHopeless)).toEqual([true, false, false, false, true]);
    expect(outcomes(list).map((o) => o.topQuartile)).toEqual([false, true, true, false, false]);
  });
});

describe("calibrateAcrossTasks", () => {
  const accuracy = trials();
  const loss = lossOnly(trials());
  const start = makeConfig();
  const result = calibrateAcrossTasks(
    [
      { name: "synthetic", trials: accuracy },
      { name: "synthetic-loss", trials: loss },
    ],
    start,
    { budget: 0.02, passes: 1 },
  );

  it("chooses each fold on the other task only and judges it on the one left out", () => {
    expect(result.folds.map((f) => f.task)).toEqual(["synthetic", "synthetic-loss"]);
    for (const f of result.folds) {
      expect(f.before.trials).toBe(64);
      expect(f.passes).toBe(falseKillRate(f.after) <= 0.02);
    }
    // the pre-calibration DIV false-kills the spiky top trials in both tasks: each fold learns that from the other
    expect(result.folds.every((f) => f.before.topQuartileStopped > 0 && f.after.topQuartileStopped === 0 && f.passes)).toBe(true);
    expect(result.report).toContain("Every fold passes on its left-out task.");
    expect(result.report).toMatch(/\| synthetic-loss \| chosen on the others \| 0\/\d+ \(0\.0 %\)/);
  });

  it("writes the config chosen on every task together, within the budget on each", () => {
    expect(result.perTask.map((t) => [t.task, t.after.topQuartileStopped])).toEqual([
      ["synthetic", 0],
      ["synthetic-loss", 0],
    ]);
    expect(result.perTask.every((t) => t.after.hopelessCaught === t.after.hopeless)).toBe(true);
  });

  it("needs two tasks", () => {
    expect(() => calibrateAcrossTasks([{ name: "one", trials: accuracy }], start, { budget: 0.02 })).toThrow(/at least 2 tasks, got 1/);
  });
});
