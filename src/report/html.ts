/**
 * The report page: one self-contained HTML document. Summary, symptom counts and the trials
 * table are plain HTML; the curves and the heat map are drawn in the page from the report
 * data, embedded as JSON, by the chart library whose text the caller passes in (it is
 * inlined, so the page fetches nothing and works from file://; its CSP forbids requests).
 */
import { REPORT_SCRIPT } from "./client-script.js";
import { escapeHtml, inlineScript, inlineStyle, jsonForScript } from "./escape.js";
import { TRIAL_OUTCOMES, type ReportModel, type StudyReport, type TrialOutcome, type TrialReport } from "./model.js";
import { OUTCOME_STYLES } from "./palette.js";
import { REPORT_CSS } from "./style.js";
import { SYMPTOM_NAMES } from "./symptom-names.js";

/** The chart library, inlined into the page. */
export interface ChartLibrary {
  /** Its browser build (defines the global `uPlot`). */
  script: string;
  style: string;
  /** Its licence text, kept in the page as a comment. */
  license: string;
}

/** The part of a study the page's script draws from. */
interface ChartData {
  curveMetrics: string[];
  logScaleMetrics: string[];
  gradRange: [number, number] | null;
  trials: Pick<TrialReport, "trial" | "outcome" | "steps" | "curves" | "layers" | "grad" | "stopStep">[];
}

const CSP = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:";

const e = escapeHtml;

function chartData(study: StudyReport): ChartData {
  return {
    curveMetrics: study.curveMetrics,
    logScaleMetrics: study.logScaleMetrics,
    gradRange: study.gradRange,
    trials: study.trials.map(({ trial, outcome, steps, curves, layers, grad, stopStep }) => ({ trial, outcome, steps, curves, layers, grad, stopStep })),
  };
}

function dot(outcome: TrialOutcome): string {
  return `<span class="dot" style="background:${OUTCOME_STYLES[outcome].color}"></span>`;
}

function tile(n: number, what: string, cls = ""): string {
  return `<div class="tile${cls ? ` ${cls}` : ""}"><span class="n">${n}</span><span class="what">${e(what)}</span></div>`;
}

function summary(study: StudyReport): string {
  const c = study.counts;
  return `<div class="tiles">
${tile(c.trials, "trials")}${tile(c.stopped, "stopped by bttackler", "stopped")}${tile(c.protected, "protected")}${tile(c.complete, "complete")}${tile(c.ended, "pruned / failed")}${tile(c.unfinished, "unfinished")}${tile(c.payloads, "payloads")}
</div>`;
}

function symptomCounts(study: StudyReport): string {
  if (study.symptoms.length === 0) return `<p class="empty">No symptom was detected in this study.</p>`;
  const max = Math.max(1, ...study.symptoms.map((s) => s.seen));
  const rows = study.symptoms.map(
    (s) => `<tr><td class="code">${s.code}</td><td>${e(SYMPTOM_NAMES[s.code])}</td><td class="num">${s.stopped}</td><td class="num">${s.seen}</td>` +
      `<td class="bar"><span class="stop" style="width:${((160 * s.stopped) / max).toFixed(1)}px"></span><span class="seen" style="width:${((160 * (s.seen - s.stopped)) / max).toFixed(1)}px"></span></td></tr>`,
  );
  return `<table class="symptom-counts">
<thead><tr><th>code</th><th>symptom</th><th class="num">stopped trials</th><th class="num">trials detected</th><th></th></tr></thead>
<tbody>
${rows.join("\n")}
</tbody></table>`;
}

function legend(study: StudyReport): string {
  const present = TRIAL_OUTCOMES.filter((o) => study.trials.some((t) => t.outcome === o));
  return `<div class="legend">${present
    .map((o) => `<span title="${e(OUTCOME_STYLES[o].description)}"><span class="swatch" style="background:${OUTCOME_STYLES[o].color}"></span>${e(OUTCOME_STYLES[o].label)}</span>`)
    .join("")}<span>\u00d7 stop step</span></div>`;
}

function curves(study: StudyReport): string {
  if (study.curveMetrics.length === 0) return `<p class="empty">No trial reported train_loss, val_loss, train_acc or val_acc.</p>`;
  const figures = study.curveMetrics.map(
    (m) => `<figure class="curve" data-metric="${m}"><figcaption>${m.replace(/_/g, " ")}</figcaption><div class="plot"></div><div class="hover"></div></figure>`,
  );
  return `${legend(study)}<div class="charts">
${figures.join("\n")}
</div>`;
}

function heatmap(study: StudyReport): string {
  if (study.gradRange === null) return `<p class="empty">No trial reported layer gradients (grad_abs_mean).</p>`;
  const chosen = Math.max(0, study.trials.findIndex((t) => t.stopStep !== null));
  const options = study.trials.map(
    (t, i) => `<option value="${i}"${i === chosen ? " selected" : ""}>${e(t.trial)} (${e(OUTCOME_STYLES[t.outcome].label)}${t.stopStep === null ? "" : ` at ${t.stopStep}`})</option>`,
  );
  return `<div class="heat-controls">
<label>Trial <select class="heat-trial">
${options.join("\n")}
</select></label>
<span class="heat-scale-range">log<sub>10</sub> mean |\u2202L/\u2202W| <span class="lo"></span><span class="bar"></span><span class="hi"></span></span>
<span class="heat-scale-range"><span class="cell-key" style="background:#e0218a"></span>non-finite<span class="cell-key" style="background:#000"></span>zero<span class="cell-key" style="background:#f2f2f2"></span>not reported</span>
</div>
<div class="heat-wrap"><canvas class="heatmap" role="img" aria-label="per-layer gradient heat map"></canvas></div>
<p class="meta">Rows: layers, input side first. Columns: steps. A red frame marks the step at which bttackler stopped the trial.</p>`;
}

function symptomList(t: TrialReport): string {
  const stop = t.stopSymptoms.map((c) => `<span class="code" title="${e(SYMPTOM_NAMES[c])}">${c}</span>`).join(" ");
  const other = t.seenSymptoms.filter((c) => !t.stopSymptoms.includes(c));
  const seen = other.length === 0 ? "" : ` <span class="seen" title="detected, did not stop the trial">(seen: ${other.join(" ")})</span>`;
  return stop + seen;
}

function trialsTable(study: StudyReport): string {
  const rows = study.trials.map(
    (t) =>
      `<tr data-outcome="${t.outcome}"><td>${dot(t.outcome)}${e(t.trial)}</td><td>${t.state}</td><td class="num">${t.lastStep ?? ""}</td>` +
      `<td class="num">${t.stopStep ?? ""}</td><td>${symptomList(t)}</td><td class="reason">${e(t.reason ?? "")}${t.unreadable > 0 ? ` <span class="seen">(${t.unreadable} unreadable rows)</span>` : ""}</td></tr>`,
  );
  return `<table class="trials">
<thead><tr><th>trial</th><th>state</th><th class="num">last step</th><th class="num">stop step</th><th>symptoms</th><th>reason</th></tr></thead>
<tbody>
${rows.join("\n")}
</tbody></table>`;
}

function studySection(study: StudyReport, index: number): string {
  const maxSteps = study.max_steps === null ? "" : `, max_steps ${study.max_steps}`;
  const body =
    study.trials.length === 0
      ? `<p class="empty">No trial has reported yet.</p>`
      : `<h3>Symptoms</h3>
${symptomCounts(study)}
<h3>Curves</h3>
${curves(study)}
<h3>Gradient heat map</h3>
${heatmap(study)}
<h3>Trials</h3>
${trialsTable(study)}`;
  return `<section class="study" id="study-${index}">
<h2>Study ${e(study.study)}</h2>
<p class="meta">created ${e(study.created_at)}${e(maxSteps)}</p>
${summary(study)}
${body}
</section>`;
}

/** The whole page. */
export function renderReportHtml(model: ReportModel, chart: ChartLibrary): string {
  const data = {
    colors: Object.fromEntries(TRIAL_OUTCOMES.map((o) => [o, OUTCOME_STYLES[o].color])),
    labels: Object.fromEntries(TRIAL_OUTCOMES.map((o) => [o, OUTCOME_STYLES[o].label])),
    studies: model.studies.map(chartData),
  };
  const nav = model.studies.length > 1 ? `<nav>${model.studies.map((s, i) => `<a href="#study-${i}">${e(s.study)}</a>`).join("")}</nav>` : "";
  const studies = model.studies.length === 0 ? `<p class="empty">The database has no studies.</p>` : model.studies.map(studySection).join("\n");
  const license = chart.license.replace(/--/g, "- -");
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="bttackler report">
<title>bttackler report \u2014 ${e(model.source)}</title>
<style>${inlineStyle(chart.style)}</style>
<style>${inlineStyle(REPORT_CSS)}</style>
</head>
<body>
<header class="page">
<h1>bttackler report</h1>
<p>${e(model.source)} \u00b7 generated ${e(model.generatedAt)} \u00b7 ${model.studies.length} ${model.studies.length === 1 ? "study" : "studies"}</p>
${nav}
</header>
<main>
${studies}
</main>
<script type="application/json" id="bttackler-report-data">${jsonForScript(data)}</script>
<!-- the chart library: uPlot, inlined\n${license} -->
<script>${inlineScript(chart.script)}</script>
<script>${inlineScript(REPORT_SCRIPT)}</script>
</body>
</html>
`;
}
