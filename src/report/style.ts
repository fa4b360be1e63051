/** The report page's own style (uPlot's comes with it): plain CSS, system fonts only, nothing fetched. */
export const REPORT_CSS = `
:root { color-scheme: light; --fg: #1d1d1f; --muted: #666; --line: #ddd; --bg-soft: #f6f7f9; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; color: var(--fg); background: #fff; }
header.page { padding: 16px 24px 8px; border-bottom: 1px solid var(--line); }
header.page h1 { margin: 0 0 4px; font-size: 20px; }
header.page p { margin: 0; color: var(--muted); }
header.page nav a { margin-right: 12px; }
main { padding: 0 24px 32px; max-width: 1400px; }
section.study { border-bottom: 1px solid var(--line); padding: 8px 0 24px; }
h2 { font-size: 18px; margin: 16px 0 4px; }
h3 { font-size: 15px; margin: 20px 0 8px; }
.meta { color: var(--muted); margin: 0 0 12px; }
.tiles { display: flex; flex-wrap: wrap; gap: 8px; }
.tile { background: var(--bg-soft); border-radius: 6px; padding: 8px 14px; min-width: 110px; }
.tile .n { font-size: 22px; font-weight: 600; display: block; }
.tile .what { color: var(--muted); font-size: 12px; }
.tile.stopped .n { color: #d62728; }
.symptom-counts td.bar { width: 240px; }
.symptom-counts .bar span { display: inline-block; height: 10px; border-radius: 2px; vertical-align: middle; }
.symptom-counts .bar .stop { background: #d62728; }
.symptom-counts .bar .seen { background: #c9c9c9; }
.legend { display: flex; flex-wrap: wrap; gap: 14px; margin: 4px 0 8px; font-size: 13px; }
.legend .swatch { display: inline-block; width: 18px; height: 4px; border-radius: 2px; vertical-align: middle; margin-right: 5px; }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(420px, 1fr)); gap: 12px 20px; }
figure.curve { margin: 0; min-width: 0; }
figure.curve figcaption { font-weight: 600; font-size: 13px; }
figure.curve .hover { color: var(--muted); font-size: 12px; min-height: 1.45em; }
.heat-controls { display: flex; flex-wrap: wrap; align-items: center; gap: 16px; margin-bottom: 6px; }
.heat-scale-range { display: inline-flex; align-items: center; gap: 6px; font-size: 12px; color: var(--muted); }
.heat-scale-range .bar { display: inline-block; width: 160px; height: 10px; border-radius: 2px; }
.cell-key { display: inline-block; width: 10px; height: 10px; vertical-align: middle; border: 1px solid #bbb; margin: 0 3px 0 8px; }
.heat-wrap { width: 100%; }
canvas.heatmap { display: block; }
table { border-collapse: collapse; font-size: 13px; }
th, td { text-align: left; padding: 4px 10px 4px 0; border-bottom: 1px solid #eee; vertical-align: top; }
th { font-weight: 600; border-bottom: 1px solid var(--line); }
td.num, th.num { text-align: right; }
table.trials { width: 100%; }
table.trials td.reason { max-width: 560px; color: #333; }
.dot { display: inline-block; width: 9px; height: 9px; border-radius: 50%; margin-right: 6px; }
.code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12px; }
.seen { color: var(--muted); }
.empty { color: var(--muted); font-style: italic; }
.render-error { background: #fdecea; color: #8a1c1c; padding: 12px; margin: 0; white-space: pre-wrap; }
`;
