/**
 * The report page's script (plain browser JavaScript, run from file:// with nothing fetched):
 * reads the report data from the page's JSON element, draws the curves with uPlot and the
 * gradient heat map on a canvas, and redraws the heat map when another trial is chosen.
 * When everything is drawn, <body> gets data-rendered="true" ("error" and a visible message
 * when something failed), which the browser test waits for.
 *
 * Kept as text because it runs in the page, not in Node: no backquotes or dollar-brace in it.
 */
export const REPORT_SCRIPT = String.raw`
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("bttackler-report-data").textContent);
  var plots = [];
  var heatmaps = [];
  /** Per study, the trial chosen for the heat map (also drawn thicker in the curves). */
  var selected = [];

  function metricLabel(metric) {
    return metric.replace(/_/g, " ");
  }

  // viridis, 9 stops
  var VIRIDIS = [[68, 1, 84], [71, 44, 122], [59, 81, 139], [44, 113, 142], [33, 144, 141], [39, 173, 129], [92, 200, 99], [170, 220, 50], [253, 231, 37]];
  function viridis(t) {
    t = Math.max(0, Math.min(1, t));
    var x = t * (VIRIDIS.length - 1);
    var i = Math.min(VIRIDIS.length - 2, Math.floor(x));
    var f = x - i;
    var a = VIRIDIS[i], b = VIRIDIS[i + 1];
    return "rgb(" + Math.round(a[0] + (b[0] - a[0]) * f) + "," + Math.round(a[1] + (b[1] - a[1]) * f) + "," + Math.round(a[2] + (b[2] - a[2]) * f) + ")";
  }
  var CELL_NON_FINITE = "#e0218a";
  var CELL_ZERO = "#000000";
  var CELL_ABSENT = "#f2f2f2";

  function plotWidth(el) {
    return Math.max(280, Math.floor(el.getBoundingClientRect().width) || 560);
  }

  /** One uPlot chart of one metric, every trial a series coloured by its outcome. */
  function drawCurves(figure, study, metric) {
    var plotEl = figure.querySelector(".plot");
    var hover = figure.querySelector(".hover");
    // drawn in this order, so that stopped trials are on top of the others
    var LAYER = { unfinished: 0, ended: 1, complete: 2, protected: 3, stopped: 4 };
    var trials = study.trials.filter(function (t) { return t.curves[metric] !== undefined; });
    trials = trials.map(function (t, i) { return [t, i]; }).sort(function (a, b) {
      return LAYER[a[0].outcome] - LAYER[b[0].outcome] || a[1] - b[1];
    }).map(function (pair) { return pair[0]; });
    var stepSet = {};
    trials.forEach(function (t) { t.steps.forEach(function (s) { stepSet[s] = true; }); });
    var xs = Object.keys(stepSet).map(Number).sort(function (a, b) { return a - b; });
    var column = {};
    xs.forEach(function (s, i) { column[s] = i; });
    var series = trials.map(function (t) {
      var ys = xs.map(function () { return null; });
      t.steps.forEach(function (s, i) { ys[column[s]] = t.curves[metric][i]; });
      return ys;
    });
    var log = study.logScaleMetrics.indexOf(metric) >= 0;
    var opts = {
      width: plotWidth(plotEl),
      height: 240,
      legend: { show: false },
      cursor: { focus: { prox: 16 }, drag: { x: true, y: false } },
      scales: { x: { time: false }, y: log ? { distr: 3 } : {} },
      axes: [{ label: "step", size: 36 }, { label: metricLabel(metric) + (log ? " (log)" : ""), size: 56 }],
      series: [{ label: "step" }].concat(trials.map(function (t) {
        return {
          label: t.trial,
          stroke: data.colors[t.outcome],
          width: t.outcome === "stopped" ? 1.75 : 1.25,
          points: { show: false },
          spanGaps: false
        };
      })),
      hooks: {
        setSeries: [function (u, i) {
          if (i === null || i === undefined || i < 1) { hover.textContent = ""; return; }
          var t = trials[i - 1];
          hover.textContent = t.trial + " \u2014 " + data.labels[t.outcome] + (t.stopStep !== null ? ", stopped at step " + t.stopStep : "");
        }],
        draw: [function (u) {
          var ctx = u.ctx;
          ctx.save();
          // the trial chosen for the heat map, drawn again thicker
          var chosen = trials.indexOf(selected[study.index]);
          if (chosen >= 0) {
            ctx.strokeStyle = data.colors[trials[chosen].outcome];
            ctx.lineWidth = 3.5 * devicePixelRatio;
            ctx.lineJoin = "round";
            ctx.beginPath();
            var pen = false;
            xs.forEach(function (x, i) {
              var y = series[chosen][i];
              if (y === null || y === undefined) { pen = false; return; }
              var px = u.valToPos(x, "x", true), py = u.valToPos(y, "y", true);
              if (pen) ctx.lineTo(px, py); else ctx.moveTo(px, py);
              pen = true;
            });
            ctx.stroke();
          }
          // an X where bttackler stopped a trial
          ctx.lineWidth = 2 * devicePixelRatio;
          trials.forEach(function (t, k) {
            if (t.stopStep === null) return;
            var i = column[t.stopStep];
            var y = series[k][i];
            if (i === undefined || y === null || y === undefined) return;
            var cx = u.valToPos(t.stopStep, "x", true), cy = u.valToPos(y, "y", true), r = 4 * devicePixelRatio;
            ctx.strokeStyle = data.colors.stopped;
            ctx.beginPath();
            ctx.moveTo(cx - r, cy - r); ctx.lineTo(cx + r, cy + r);
            ctx.moveTo(cx + r, cy - r); ctx.lineTo(cx - r, cy + r);
            ctx.stroke();
          });
          ctx.restore();
        }]
      }
    };
    var plot = new uPlot(opts, [xs].concat(series), plotEl);
    plots.push({ plot: plot, el: plotEl, study: study });
    figure.setAttribute("data-series", String(trials.length));
  }

  function formatPow(v) {
    return "1e" + (Math.round(v * 10) / 10);
  }

  /** The per-layer gradient heat map (layers x steps, log10 grad_abs_mean) of one trial. */
  function drawHeatmap(canvas, study, t) {
    var ctx = canvas.getContext("2d");
    var dpr = window.devicePixelRatio || 1;
    var width = Math.max(320, Math.floor(canvas.parentNode.getBoundingClientRect().width) || 640);
    var L = t.layers.length, S = t.steps.length;
    ctx.font = "12px system-ui, sans-serif";
    var left = 8;
    t.layers.forEach(function (name) { left = Math.max(left, ctx.measureText(name).width + 12); });
    left = Math.min(left, 180);
    var top = 8, bottom = 34, right = 8;
    var cellH = L === 0 ? 0 : Math.max(4, Math.min(22, Math.floor(320 / L)));
    var height = top + Math.max(L * cellH, 40) + bottom;
    canvas.width = Math.round(width * dpr);
    canvas.height = Math.round(height * dpr);
    canvas.style.width = width + "px";
    canvas.style.height = height + "px";
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, width, height);
    ctx.font = "12px system-ui, sans-serif";
    canvas.setAttribute("data-trial", t.trial);
    if (L === 0 || S === 0 || study.gradRange === null) {
      ctx.fillStyle = "#666";
      ctx.fillText("trial " + t.trial + " reported no layer gradients", 8, top + 20);
      return;
    }
    var lo = study.gradRange[0], hi = study.gradRange[1], span = hi - lo || 1;
    var cellW = (width - left - right) / S;
    // cell edges on whole pixels, so that no seam shows between neighbours
    var edge = function (si) { return Math.round(left + si * cellW); };
    for (var li = 0; li < L; li++) {
      for (var si = 0; si < S; si++) {
        var cell = t.grad[li][si];
        ctx.fillStyle = typeof cell === "number" ? viridis((cell - lo) / span) : cell === "nf" ? CELL_NON_FINITE : cell === "zero" ? CELL_ZERO : CELL_ABSENT;
        ctx.fillRect(edge(si), top + li * cellH, edge(si + 1) - edge(si), cellH);
      }
    }
    ctx.fillStyle = "#222";
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    var every = Math.max(1, Math.ceil(13 / cellH));
    for (li = 0; li < L; li += every) ctx.fillText(t.layers[li], left - 6, top + li * cellH + cellH / 2);
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    var stepEvery = Math.max(1, Math.ceil(36 / cellW));
    for (si = 0; si < S; si += stepEvery) ctx.fillText(String(t.steps[si]), left + (si + 0.5) * cellW, top + L * cellH + 4);
    ctx.fillText("step", left + (width - left - right) / 2, top + L * cellH + 19);
    if (t.stopStep !== null) {
      var at = t.steps.indexOf(t.stopStep);
      if (at >= 0) {
        ctx.strokeStyle = data.colors.stopped;
        ctx.lineWidth = 2;
        ctx.strokeRect(left + at * cellW + 1, top + 1, Math.max(2, cellW - 2), L * cellH - 2);
      }
    }
    canvas.onmousemove = function (e) {
      var r = canvas.getBoundingClientRect();
      var si = Math.floor((e.clientX - r.left - left) / cellW), li = Math.floor((e.clientY - r.top - top) / cellH);
      if (si < 0 || si >= S || li < 0 || li >= L) { canvas.title = ""; return; }
      var cell = t.grad[li][si];
      canvas.title = t.layers[li] + ", step " + t.steps[si] + ": " + (typeof cell === "number" ? "grad_abs_mean = 1e" + cell : cell === "nf" ? "non-finite" : cell === "zero" ? "0" : "not reported");
    };
  }

  function setUpHeatmap(section, study) {
    var canvas = section.querySelector("canvas.heatmap");
    var select = section.querySelector("select.heat-trial");
    if (!canvas || !select) return;
    var scale = section.querySelector(".heat-scale-range");
    if (scale && study.gradRange !== null) {
      var stops = [];
      for (var k = 0; k <= 8; k++) stops.push(viridis(k / 8));
      scale.querySelector(".bar").style.background = "linear-gradient(to right," + stops.join(",") + ")";
      scale.querySelector(".lo").textContent = formatPow(study.gradRange[0]);
      scale.querySelector(".hi").textContent = formatPow(study.gradRange[1]);
    }
    var redraw = function () {
      var t = study.trials[Number(select.value)];
      selected[study.index] = t;
      if (t) drawHeatmap(canvas, study, t);
      plots.forEach(function (p) {
        if (p.study === study) p.plot.redraw(false);
      });
    };
    select.addEventListener("change", redraw);
    heatmaps.push(redraw);
    redraw();
  }

  try {
    if (typeof uPlot !== "function") throw new Error("the chart library is missing from the page");
    data.studies.forEach(function (study, si) {
      study.index = si;
      var section = document.getElementById("study-" + si);
      section.querySelectorAll("figure.curve").forEach(function (figure) {
        drawCurves(figure, study, figure.getAttribute("data-metric"));
      });
      setUpHeatmap(section, study);
    });
    var resizeTimer = null;
    window.addEventListener("resize", function () {
      clearTimeout(resizeTimer);
      resizeTimer = setTimeout(function () {
        plots.forEach(function (p) { p.plot.setSize({ width: plotWidth(p.el), height: 240 }); });
        heatmaps.forEach(function (redraw) { redraw(); });
      }, 100);
    });
    document.body.setAttribute("data-rendered", "true");
  } catch (err) {
    document.body.setAttribute("data-rendered", "error");
    var box = document.createElement("pre");
    box.className = "render-error";
    box.textContent = "The charts could not be drawn: " + (err && err.stack ? err.stack : String(err));
    document.body.insertBefore(box, document.body.firstChild);
  }
})();
`;
