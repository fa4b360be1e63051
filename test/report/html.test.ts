/** The report page's HTML: escaping of user data, the embedded data, what each section shows. */
import { describe, expect, it } from "vitest";
import { escapeHtml, inlineScript, jsonForScript } from "../../src/report/escape.js";
import { renderReportHtml, type ChartLibrary } from "../../src/report/html.js";
import { buildStudyReport, type ReportModel } from "../../src/report/model.js";
import { resolveConfig } from "../../src/schema/validate.js";
import type { StoredEvent } from "../../src/store/stored-types.js";

const LIBRARY: ChartLibrary = { script: "var uPlot = function () {}; /* fake */", style: ".uplot{}", license: "The MIT License -- fake" };
const HOSTILE_STUDY = "</script><script>alert('study')</script>";
const HOSTILE_TRIAL = "<!-- t&1 </SCRIPT>\u2028\"'";

function payloadRow(study: string, trial: string, step: number, stop = false): StoredEvent {
  const verdict = stop
    ? { trial, step, stop: true, stopped_at: step, protected: false, reason: "EG <b>boom</b>", symptoms: [{ code: "EG", rule: "r", message: "m", evidence: { indicator: "g", value: 1, threshold: 0 }, action: "stop", count: 1, persistence: 1 }] }
    : { trial, step, stop: false, protected: false, symptoms: [] };
  const payload = { step, metrics: { train_loss: 1 / (step + 1), val_loss: 1.1 / (step + 1) }, layers: [{ name: "l0", grad_abs_mean: 0.001 }] };
  return { study, trial, kind: "payload", step, body: JSON.stringify(payload), format: "payload", verdict: JSON.stringify(verdict) };
}

function model(): ReportModel {
  const config = resolveConfig({});
  const events: StoredEvent[] = [
    payloadRow(HOSTILE_STUDY, "healthy", 0),
    payloadRow(HOSTILE_STUDY, "healthy", 1),
    { study: HOSTILE_STUDY, trial: "healthy", kind: "end", state: "complete" },
    payloadRow(HOSTILE_STUDY, HOSTILE_TRIAL, 0),
    payloadRow(HOSTILE_STUDY, HOSTILE_TRIAL, 1, true),
    { study: HOSTILE_STUDY, trial: HOSTILE_TRIAL, kind: "end", state: "pruned" },
  ];
  return {
    source: "runs/<db>.sqlite",
    generatedAt: "2026-01-01T00:00:00.000Z",
    studies: [buildStudyReport({ study: HOSTILE_STUDY, config, created_at: "2026-01-01T00:00:00.000Z" }, events)],
  };
}

function embeddedData(html: string): { studies: { trials: { trial: string }[] }[] } {
  const match = /<script type="application\/json" id="bttackler-report-data">([^<]*)<\/script>/.exec(html);
  if (match?.[1] === undefined) throw new Error("no data element");
  return JSON.parse(match[1]) as ReturnType<typeof embeddedData>;
}

describe("escaping", () => {
  it("escapes text for HTML content and attributes", () => {
    expect(escapeHtml(`<a href="x">'&'</a>`)).toBe("&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
  });

  it("writes JSON that cannot end its script element and parses back to the same value", () => {
    const value = { name: "</script><!-- \u2028 & >" };
    const text = jsonForScript(value);
    expect(text).not.toMatch(/[<>&\u2028]/);
    expect(JSON.parse(text)).toEqual(value);
  });

  it("keeps an inlined script from closing its element", () => {
    expect(inlineScript('var s = "</script>"; // <!-- x')).toBe('var s = "<\\/script>"; // <\\!-- x');
  });
});

describe("renderReportHtml", () => {
  const html = renderReportHtml(model(), LIBRARY);

  it("shows user-supplied names only as text, and embeds them intact in the data", () => {
    expect(html.match(/<script/gi)).toHaveLength(3);
    expect(html.match(/<\/script>/gi)).toHaveLength(3);
    expect(html).not.toContain("alert('study')</script>");
    expect(html).toContain("<h2>Study &lt;/script&gt;&lt;script&gt;alert(&#39;study&#39;)&lt;/script&gt;</h2>");
    expect(html).toContain("<title>bttackler report \u2014 runs/&lt;db&gt;.sqlite</title>");
    expect(html).toContain("EG &lt;b&gt;boom&lt;/b&gt;");
    expect(html).not.toContain("<!-- t&1");
    expect(embeddedData(html).studies[0]?.trials.map((t) => t.trial)).toEqual(["healthy", HOSTILE_TRIAL]);
  });

  it("inlines the chart library and its licence, and forbids every request in its CSP", () => {
    expect(html).toContain(`<script>${LIBRARY.script}</script>`);
    expect(html).toContain("The MIT License - - fake");
    expect(html).toContain(`content="default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:"`);
    expect(html).not.toMatch(/\b(src|href)="(?!#)/);
  });

  it("shows the counts, the symptoms, a chart per reported curve metric, the heat map on the stopped trial and a row per trial", () => {
    expect(html).toMatch(/<span class="n">2<\/span><span class="what">trials<\/span>/);
    expect(html).toMatch(/<span class="n">1<\/span><span class="what">stopped by bttackler<\/span>/);
    expect(html).toContain('<td class="code">EG</td><td>exploding gradient</td><td class="num">1</td><td class="num">1</td>');
    expect([...html.matchAll(/<figure class="curve" data-metric="([a-z_]+)">/g)].map((m) => m[1])).toEqual(["train_loss", "val_loss"]);
    expect(html).toMatch(/<option value="1" selected>&lt;!-- t&amp;1 &lt;\/SCRIPT&gt;\u2028&quot;&#39; \(stopped at 1\)<\/option>/);
    expect(html.match(/<tr data-outcome="(stopped|complete)">/g)).toEqual(['<tr data-outcome="complete">', '<tr data-outcome="stopped">']);
    // the legend names only the outcomes present
    expect(html).toContain("</span>stopped</span>");
    expect(html).toContain("</span>complete</span>");
    expect(html).not.toContain("</span>unfinished</span>");
  });

  it("says so when there is nothing to show", () => {
    const empty = renderReportHtml({ source: "x.db", generatedAt: "t", studies: [] }, LIBRARY);
    expect(empty).toContain("The database has no studies.");
    const config = resolveConfig({});
    const noTrials = renderReportHtml({ source: "x.db", generatedAt: "t", studies: [buildStudyReport({ study: "s", config, created_at: "t" }, [])] }, LIBRARY);
    expect(noTrials).toContain("No trial has reported yet.");
    expect(noTrials).not.toContain("<canvas");
  });
});
