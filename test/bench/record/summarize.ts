/**
 * What a trace file holds: how many trials ended hopeless, the spread of val accuracy, which
 * regions of the space are bad, time and size. Hopeless is the one definition of
 * src/calibration/outcome.ts (docs/benchmarks.md, "Outcomes"): non-finite or failed, or a final
 * objective no better than the task's hopeless_at (chance accuracy: val acc <= 0.2).
 * Loss-only recordings (`objective: "val_loss"`, the char-rnn task) are summarized on val loss
 * instead, hopeless at the unigram baseline (the loss of predicting the train set's character
 * frequencies without context).
 *
 *   npx tsx test/bench/record/summarize.ts [test/bench/traces/mnist-mlp.jsonl]
 */
import { readFileSync, statSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { calibrationTrial, isHopeless as hopelessOutcome } from "../../../src/calibration/outcome.js";
import { DEFAULT_TASK_GOAL, readTraceFile as readAnyTraceFile, taskGoalOf, type TraceTrial as AnyTraceTrial } from "../../../src/replay/trace-format.js";
import type { AnyTrialConfig, TaskKind } from "./tasks.js";
import { loadTextSplit } from "./text-data.js";

type TraceTrial = AnyTraceTrial<AnyTrialConfig, TaskKind>;
const readTraceFile = (path: string) => readAnyTraceFile<AnyTrialConfig, TaskKind>(path);
/** A config field by name, for grouping across the tasks' spaces ("-" where a space lacks it). */
const field = (t: TraceTrial, name: string): unknown => (t.config as unknown as Record<string, unknown>)[name] ?? "-";

/** Val accuracy at or below this is "at chance" for 10 balanced classes (chance is 0.1): the first recordings' hopeless_at. */
export const CHANCE_CEILING = DEFAULT_TASK_GOAL.hopeless_at;

const quantile = (sorted: number[], q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;

export function finalValAcc(t: TraceTrial): number {
  return t.final.val_acc ?? 0;
}

export function bestValAcc(t: TraceTrial): number {
  return Math.max(0, ...t.epochs.map((e) => e.payload.metrics?.val_acc ?? 0));
}

/** Hopeless by the one definition (src/calibration/outcome.ts), on the trace line's own task goal. */
export function isHopeless(t: TraceTrial): boolean {
  return hopelessOutcome(calibrationTrial(t));
}

/** Per value of `key`: how many trials, how many hopeless, and the median of the objective (`label`, `score`, shown with `format`). */
function groupBy(
  trials: TraceTrial[],
  key: (t: TraceTrial) => string,
  hopeless: (t: TraceTrial) => boolean,
  label: string,
  score: (t: TraceTrial) => number,
  format: (x: number) => string,
): string {
  const groups = new Map<string, TraceTrial[]>();
  for (const t of trials) groups.set(key(t), [...(groups.get(key(t)) ?? []), t]);
  return [...groups.entries()]
    .sort(([a], [b]) => a.localeCompare(b, "en", { numeric: true }))
    .map(([k, ts]) => `${k}: n ${ts.length}, hopeless ${ts.filter(hopeless).length}, median ${label} ${format(quantile(ts.map(score).sort((a, b) => a - b), 0.5))}`)
    .join("; ");
}

function group(trials: TraceTrial[], key: (t: TraceTrial) => string): string {
  return groupBy(trials, key, isHopeless, "val", finalValAcc, (x) => x.toFixed(2));
}

/** Training time in all and per trial, and the spread of epoch times. */
function timeLine(trials: TraceTrial[]): string {
  const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);
  const seconds = sum(trials.map((t) => t.train_seconds));
  const cpuSeconds = sum(trials.map((t) => t.train_cpu_seconds ?? 0));
  const n = Math.max(1, trials.length);
  const epochSeconds = trials.flatMap((t) => t.epochs.map((e) => e.seconds)).sort((a, b) => a - b);
  return (
    `time: training ${seconds.toFixed(0)} s wall (${cpuSeconds.toFixed(0)} s cpu) in all, ${(seconds / n).toFixed(1)} s wall (${(cpuSeconds / n).toFixed(1)} s cpu) per trial; ` +
    `epoch seconds median ${quantile(epochSeconds, 0.5).toFixed(2)}, 90 % ${quantile(epochSeconds, 0.9).toFixed(2)}, max ${quantile(epochSeconds, 1).toFixed(2)}`
  );
}

const decade = (x: number): string => (x === 0 ? "0" : `1e${Math.floor(Math.log10(x))}`);

export function summarize(trials: TraceTrial[]): string {
  const finals = trials.map(finalValAcc).sort((a, b) => a - b);
  const bests = trials.map(bestValAcc).sort((a, b) => a - b);
  const count = (p: (t: TraceTrial) => boolean): number => trials.filter(p).length;
  const bins = [0, CHANCE_CEILING, 0.5, 0.8, 0.9, 0.95, 1.01];
  const histogram = bins
    .slice(0, -1)
    .map((low, i) => `[${low}, ${Math.min(1, bins[i + 1] as number)}${i === bins.length - 2 ? "]" : ")"}: ${finals.filter((v) => v >= low && v < (bins[i + 1] as number)).length}`)
    .join("  ");
  const top10 = [...trials].sort((a, b) => bestValAcc(b) - bestValAcc(a)).slice(0, 10);
  return [
    `${trials.length} trials: ok ${count((t) => t.status === "ok")}, non_finite ${count((t) => t.status === "non_finite")}, error ${count((t) => t.status === "error")}; ` +
      `hopeless (non-finite, failed or final val acc <= ${CHANCE_CEILING}) ${count(isHopeless)} (${((100 * count(isHopeless)) / Math.max(1, trials.length)).toFixed(0)} %)`,
    `final val acc: ${histogram}`,
    `final val acc quantiles 10/25/50/75/90 %: ${[0.1, 0.25, 0.5, 0.75, 0.9].map((q) => quantile(finals, q).toFixed(3)).join(" / ")}; best-epoch val acc max ${quantile(bests, 1).toFixed(3)}, median ${quantile(bests, 0.5).toFixed(3)}`,
    `top 10 by best val acc: ${top10.map((t) => `#${t.trial} ${bestValAcc(t).toFixed(3)}`).join(", ")}`,
    `by optimizer: ${group(trials, (t) => t.config.optimizer)}`,
    `by activation: ${group(trials, (t) => String(field(t, "activation")))}`,
    `by lr decade: ${group(trials, (t) => decade(t.config.lr))}`,
    `by init_scale decade: ${group(trials, (t) => decade(t.config.init_scale))}`,
    `by weight_decay decade: ${group(trials, (t) => decade(t.config.weight_decay))}`,
    `by batch_norm: ${group(trials, (t) => String(field(t, "batch_norm")))}`,
    `by dropout: ${group(trials, (t) => (t.config.dropout < 0.3 ? "<0.3" : t.config.dropout < 0.6 ? "0.3-0.6" : ">=0.6"))}`,
    timeLine(trials),
  ].join("\n");
}

/** The final val loss; a non-finite or missing one counts as +Infinity (the worst). */
export function finalValLoss(t: TraceTrial): number {
  return t.final.val_loss ?? Number.POSITIVE_INFINITY;
}

export function bestValLoss(t: TraceTrial): number {
  return Math.min(Number.POSITIVE_INFINITY, ...t.epochs.map((e) => e.payload.metrics?.val_loss ?? Number.POSITIVE_INFINITY));
}

/** The summary of a loss-only recording: `baseline` is the loss at or above which a trial learned nothing. */
export function summarizeLoss(trials: TraceTrial[], baseline: number): string {
  const hopeless = (t: TraceTrial): boolean =>
    hopelessOutcome({ ...calibrationTrial(t), goal: { metric: "val_loss", direction: "minimize", hopeless_at: baseline } });
  const finals = trials.map(finalValLoss).sort((a, b) => a - b);
  const count = (p: (t: TraceTrial) => boolean): number => trials.filter(p).length;
  const fmt = (x: number): string => (Number.isFinite(x) ? x.toFixed(3) : "inf");
  const groupLoss = (key: (t: TraceTrial) => string): string => groupBy(trials, key, hopeless, "val loss", finalValLoss, fmt);
  const edges = [0, 2.2, 2.4, 2.6, 2.8, baseline];
  const histogram =
    edges
      .slice(0, -1)
      .map((low, i) => `[${low.toFixed(2)}, ${(edges[i + 1] as number).toFixed(2)}): ${finals.filter((v) => v >= low && v < (edges[i + 1] as number)).length}`)
      .join("  ") + `  >= ${baseline.toFixed(2)} or non-finite: ${finals.filter((v) => !(v < baseline)).length}`;
  const best = [...trials].sort((a, b) => bestValLoss(a) - bestValLoss(b)).slice(0, 10);
  return [
    `${trials.length} trials (objective: val loss, lower is better): ok ${count((t) => t.status === "ok")}, non_finite ${count((t) => t.status === "non_finite")}, error ${count((t) => t.status === "error")}; ` +
      `hopeless (non-finite, failed or final val loss >= the unigram baseline ${baseline.toFixed(3)}) ${count(hopeless)} (${((100 * count(hopeless)) / Math.max(1, trials.length)).toFixed(0)} %)`,
    `final val loss: ${histogram}`,
    `final val loss quantiles 10/25/50/75/90 %: ${[0.1, 0.25, 0.5, 0.75, 0.9].map((q) => fmt(quantile(finals, q))).join(" / ")}; best-epoch val loss min ${fmt(quantile(trials.map(bestValLoss).sort((a, b) => a - b), 0))}`,
    `top 10 by best val loss: ${best.map((t) => `#${t.trial} ${fmt(bestValLoss(t))}`).join(", ")}`,
    `by optimizer: ${groupLoss((t) => String(field(t, "optimizer")))}`,
    `by cell: ${groupLoss((t) => String(field(t, "cell")))}`,
    `by activation: ${groupLoss((t) => String(field(t, "activation")))}`,
    `by lr decade: ${groupLoss((t) => decade(t.config.lr))}`,
    `by init_scale decade: ${groupLoss((t) => decade(t.config.init_scale))}`,
    `by recurrent_scale decade: ${groupLoss((t) => decade(Number(field(t, "recurrent_scale"))))}`,
    `by weight_decay decade: ${groupLoss((t) => decade(t.config.weight_decay))}`,
    timeLine(trials),
  ].join("\n");
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const path = process.argv[2] ?? fileURLToPath(new URL("../traces/mnist-mlp.jsonl", import.meta.url));
  const { trials } = readTraceFile(path);
  const first = trials[0];
  const lossOnly = first?.objective === "val_loss";
  // the lines' task block states the unigram baseline; the first char-rnn lines had none, so it is computed from the text
  const baseline = (t: TraceTrial): number => {
    const stated = taskGoalOf(t).hopeless_at;
    return Number.isFinite(stated) ? stated : loadTextSplit({ train: t.split.train, val: t.split.val, test: t.split.test }).unigramLoss;
  };
  console.log(lossOnly && first !== undefined ? summarizeLoss(trials, baseline(first)) : summarize(trials));
  const bytes = statSync(path).size;
  const gzipped = gzipSync(readFileSync(path), { level: 9 }).length;
  const perTrial = (n: number): string => (trials.length > 0 ? ((n / trials.length) * 300 / 1e6).toFixed(1) : "?");
  console.log(`size: ${(bytes / 1e6).toFixed(2)} MB (${(gzipped / 1e6).toFixed(2)} MB gzip -9); at 300 trials ≈ ${perTrial(bytes)} MB, ${perTrial(gzipped)} MB gzipped`);
}
