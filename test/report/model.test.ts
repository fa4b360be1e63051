/** The report model built from stored events: trial states and outcomes, stop step, symptoms, curves, heat-map cells. */
import { describe, expect, it } from "vitest";
import type { Symptom, Verdict } from "../../src/diagnosis/types.js";
import { buildStudyReport } from "../../src/report/model.js";
import { resolveConfig } from "../../src/schema/validate.js";
import type { StoredEvent, StoredStudy } from "../../src/store/stored-types.js";

const STUDY: StoredStudy = { study: "s", config: resolveConfig({ max_steps: 10 }), created_at: "2026-01-01T00:00:00.000Z" };

function symptom(code: Symptom["code"], action: Symptom["action"]): Symptom {
  return { code, rule: "r", message: `${code} fired`, evidence: { indicator: "x", value: 1, threshold: 0 }, action, count: 1, persistence: 1 };
}

function verdict(trial: string, step: number, extra: Partial<Verdict> = {}): Verdict {
  return { trial, step, stop: false, protected: false, symptoms: [], ...extra };
}

/** A payload row as the service stores it: the payload's JSON, or the JSON-RPC request holding it. */
function row(trial: string, payload: Record<string, unknown>, v: Verdict, format: "payload" | "request" = "payload"): StoredEvent {
  const body =
    format === "payload" ? JSON.stringify(payload) : JSON.stringify({ jsonrpc: "2.0", id: 1, method: "trial.report", params: { study: "s", trial, payload } });
  return { study: "s", trial, kind: "payload", step: payload.step as number, body, format, verdict: JSON.stringify(v) };
}

const end = (trial: string, state: "complete" | "pruned" | "failed"): StoredEvent => ({ study: "s", trial, kind: "end", state });

describe("buildStudyReport", () => {
  it("takes a stopped trial's stop step, stop symptoms and reason from its verdicts, and its state from its end", () => {
    const report = buildStudyReport(STUDY, [
      row("a", { step: 0, metrics: { train_loss: 2 } }, verdict("a", 0, { symptoms: [symptom("SC", "watch")] })),
      row("a", { step: 1, metrics: { train_loss: 1e6 } }, verdict("a", 1, {
        stop: true,
        stopped_at: 1,
        reason: "DIV loss_diverged: train_loss rose 5e5x",
        symptoms: [symptom("DIV", "stop"), symptom("NF", "stop"), symptom("SC", "watch")],
      })),
      // reports after the stop carry the same stopped_at
      row("a", { step: 2, metrics: { train_loss: 1e7 } }, verdict("a", 2, { stop: true, stopped_at: 1, reason: "later", symptoms: [symptom("EG", "stop")] })),
      end("a", "pruned"),
    ]);
    const [a] = report.trials;
    expect(a).toMatchObject({
      trial: "a",
      state: "pruned",
      outcome: "stopped",
      steps: [0, 1, 2],
      lastStep: 2,
      stopStep: 1,
      stopSymptoms: ["NF", "DIV"],
      reason: "DIV loss_diverged: train_loss rose 5e5x",
    });
    expect(a?.seenSymptoms).toEqual(["NF", "EG", "SC", "DIV"]);
    expect(report.counts).toMatchObject({ trials: 1, payloads: 3, stopped: 1 });
    expect(report.symptoms).toEqual([
      { code: "NF", stopped: 1, seen: 1 },
      { code: "EG", stopped: 0, seen: 1 },
      { code: "SC", stopped: 0, seen: 1 },
      { code: "DIV", stopped: 1, seen: 1 },
    ]);
  });

  it("tells protected, complete, pruned/failed and unfinished trials apart", () => {
    const report = buildStudyReport(STUDY, [
      row("held", { step: 0 }, verdict("held", 0, { protected: true, symptoms: [symptom("OF", "protected")] })),
      end("held", "complete"),
      row("good", { step: 0 }, verdict("good", 0)),
      end("good", "complete"),
      row("pruned", { step: 0 }, verdict("pruned", 0)),
      end("pruned", "pruned"),
      row("failed", { step: 0 }, verdict("failed", 0)),
      end("failed", "failed"),
      row("running", { step: 0 }, verdict("running", 0)),
    ]);
    expect(report.trials.map((t) => [t.trial, t.state, t.outcome])).toEqual([
      ["held", "complete", "protected"],
      ["good", "complete", "complete"],
      ["pruned", "pruned", "ended"],
      ["failed", "failed", "ended"],
      ["running", "unfinished", "unfinished"],
    ]);
    expect(report.counts).toEqual({ trials: 5, payloads: 5, stopped: 0, protected: 1, complete: 1, ended: 2, unfinished: 1 });
    expect(report.trials.every((t) => t.stopStep === null && t.reason === null)).toBe(true);
  });

  it("reads bodies stored as the payload and as the whole request alike, non-finite tokens included", () => {
    const report = buildStudyReport(STUDY, [
      row("p", { step: 0, metrics: { train_loss: 1.5, val_acc: 0.5 } }, verdict("p", 0)),
      row("p", { step: 1, metrics: { train_loss: 1.25, val_acc: 0.625 } }, verdict("p", 1), "request"),
      { study: "s", trial: "p", kind: "payload", step: 2, body: '{"step": 2, "metrics": {"train_loss": NaN, "val_acc": 0.75}}', format: "payload", verdict: JSON.stringify(verdict("p", 2)) },
    ]);
    expect(report.trials[0]?.curves).toEqual({ train_loss: [1.5, 1.25, null], val_acc: [0.5, 0.625, 0.75] });
    expect(report.curveMetrics).toEqual(["train_loss", "val_acc"]);
    expect(report.logScaleMetrics).toEqual(["train_loss"]);
  });

  it("keeps curves aligned with the steps when a metric starts late, and draws a loss that reaches 0 on a linear scale", () => {
    const report = buildStudyReport(STUDY, [
      row("t", { step: 0, metrics: { train_loss: 1 } }, verdict("t", 0)),
      row("t", { step: 1, metrics: { train_loss: 0, val_loss: 0.5 } }, verdict("t", 1)),
    ]);
    expect(report.trials[0]?.curves).toEqual({ train_loss: [1, 0], val_loss: [null, 0.5] });
    expect(report.logScaleMetrics).toEqual(["val_loss"]);
  });

  it("makes the heat map of log10 grad_abs_mean per layer and step, marking non-finite, zero and missing cells", () => {
    const report = buildStudyReport(STUDY, [
      row("t", { step: 0, layers: [{ name: "conv", grad_abs_mean: 0.01 }, { name: "fc", grad_abs_mean: 1 }] }, verdict("t", 0)),
      row("t", { step: 1, layers: [{ name: "conv", grad_abs_mean: null }, { name: "fc", grad_abs_mean: 0 }, { grad_abs_mean: 1000 }] }, verdict("t", 1)),
      row("t", { step: 2, layers: [{ name: "conv" }] }, verdict("t", 2)),
    ]);
    const [t] = report.trials;
    expect(t?.layers).toEqual(["conv", "fc", "layer[2]"]);
    expect(t?.grad).toEqual([
      [-2, "nf", null],
      [0, "zero", null],
      [null, 3, null],
    ]);
    expect(report.gradRange).toEqual([-2, 3]);
  });

  it("counts a row it cannot read instead of failing the whole report", () => {
    const report = buildStudyReport(STUDY, [
      row("t", { step: 0, metrics: { train_loss: 1 } }, verdict("t", 0)),
      { study: "s", trial: "t", kind: "payload", step: 1, body: "{not json", format: "payload", verdict: "null" },
      { study: "s", trial: "t", kind: "payload", step: 2, body: '{"step": -1}', format: "payload", verdict: "null" },
    ]);
    expect(report.trials[0]).toMatchObject({ steps: [0], unreadable: 2 });
  });

  it("reports a study without events as empty", () => {
    const report = buildStudyReport(STUDY, []);
    expect(report).toMatchObject({ study: "s", max_steps: 10, trials: [], symptoms: [], curveMetrics: [], gradRange: null });
    expect(report.counts.trials).toBe(0);
  });
});
