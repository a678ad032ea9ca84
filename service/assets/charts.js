/* The sweep page's Plotly charts. Each chart draws when its panel is open and redraws
   only when its data changed: objective and parallel coordinates from the polled trial
   list, learning curves, OFAT and importance from their own endpoints. Every user string
   handed to Plotly goes through plotlyText (Plotly interprets a subset of HTML). */
"use strict";

window.sweepCharts = (() => {
  const { el, plotlyText: esc, fetchJSON, number } = sweepctl;
  const sweepId = document.getElementById("sweep").dataset.sweepId;
  const metric = document.getElementById("sweep").dataset.metric;
  const CONFIG = { responsive: true, displaylogo: false };
  const memo = { data: null, picked: [], keys: {} };

  const isOpen = (panel) => document.getElementById(panel).open;

  /** Redraw a chart only when `key` differs from the last drawn one. */
  function changed(chart, key) {
    if (memo.keys[chart] === key) return false;
    memo.keys[chart] = key;
    return true;
  }

  function message(target, text) {
    const node = document.getElementById(target);
    if (window.Plotly) Plotly.purge(node);
    node.replaceChildren(el("p", { className: "empty" }, text));
  }

  /** Plotly.react into a chart div, dropping a "no data yet" line left from earlier. */
  function plot(target, traces, plotLayout) {
    const node = typeof target === "string" ? document.getElementById(target) : target;
    for (const stale of node.querySelectorAll(":scope > p.empty")) stale.remove();
    return Plotly.react(node, traces, plotLayout, CONFIG);
  }

  function layout(extra) {
    return Object.assign({ margin: { t: 30, r: 20, b: 50, l: 60 }, height: 380, hovermode: "closest" }, extra);
  }

  function finishedCount(data) {
    const c = data.sweep.trial_counts;
    return (c.COMPLETED || 0) + (c.PRUNED || 0) + (c.FAILED || 0);
  }

  function drawObjective(data) {
    const done = data.trials.filter((t) => t.state === "COMPLETED" && t.objective !== null);
    if (!changed("objective", JSON.stringify([done.length, data.best_so_far.length]))) return;
    if (!done.length) return message("chart-objective", "No completed trial yet.");
    const stages = [...new Set(done.map((t) => t.stage))];
    const traces = stages.map((stage) => {
      const mine = done.filter((t) => t.stage === stage);
      return {
        type: done.length > 2000 ? "scattergl" : "scatter", mode: "markers", name: esc(stage || "–"),
        x: mine.map((t) => t.number), y: mine.map((t) => t.objective),
        text: mine.map((t) => "trial #" + t.number), customdata: mine.map((t) => t.id),
      };
    });
    traces.push({
      type: "scatter", mode: "lines", name: "best so far", line: { shape: "hv", width: 2 },
      x: data.best_so_far.map((p) => p.number), y: data.best_so_far.map((p) => p.best),
    });
    plot("chart-objective", traces, layout({ xaxis: { title: { text: "trial #" } }, yaxis: { title: { text: esc(metric) } } }));
  }

  function axis(param, trials) {
    const values = trials.map((t) => t.params[param.name]);
    if (param.type === "categorical" || values.some((v) => typeof v !== "number")) {
      const choices = param.choices || [...new Set(values.map(String))];
      const labels = choices.map(String);
      return {
        label: esc(param.name), tickvals: labels.map((_, i) => i), ticktext: labels.map(esc),
        values: values.map((v) => labels.indexOf(String(v))),
      };
    }
    if (param.log) {
      return { label: esc(`log10(${param.name})`), values: values.map((v) => Math.log10(v)) };
    }
    return { label: esc(param.name), values };
  }

  function drawParallel(data) {
    const done = data.trials.filter((t) => t.state === "COMPLETED" && t.objective !== null);
    if (!changed("parallel", String(done.length))) return;
    if (!done.length || !data.parameters.length) return message("chart-parallel", "No completed trial yet.");
    const objective = done.map((t) => t.objective);
    const dims = data.parameters.map((p) => axis(p, done));
    dims.push({ label: esc(metric), values: objective });
    const trace = {
      type: "parcoords", dimensions: dims,
      line: { color: objective, colorscale: "Viridis", showscale: true, reversescale: data.sweep.objective.maximize },
    };
    plot("chart-parallel", [trace], layout({ margin: { t: 50, r: 60, b: 30, l: 60 } }));
  }

  function defaultCurveIds(data) {
    const done = data.trials.filter((t) => t.state === "COMPLETED" && t.objective !== null);
    const sign = data.sweep.objective.maximize ? -1 : 1;
    done.sort((a, b) => sign * (a.objective - b.objective) || a.number - b.number);
    return done.slice(0, 3).map((t) => t.id);
  }

  async function drawCurves(data, picked) {
    const ids = picked.length ? picked : defaultCurveIds(data);
    const running = data.trials.filter((t) => ids.includes(t.id)).map((t) => `${t.id}:${t.evaluations}`);
    if (!changed("curves", JSON.stringify([ids, running]))) return;
    if (!ids.length) return message("chart-curves", "Pick trials in the table, or wait for a completed one.");
    const result = await fetchJSON(`/api/v1/sweeps/${sweepId}/curves?trials=${ids.join(",")}`);
    if (!result.ok) return message("chart-curves", sweepctl.detail(result.body));
    const traces = [];
    const flags = [];
    for (const c of result.body.curves) {
      const label = `#${c.number}`;
      if (c.training_loss.some((v) => v !== null)) {
        traces.push({ type: "scatter", mode: "lines+markers", name: `${label} training`, legendgroup: label,
          x: c.epochs, y: c.training_loss, line: { dash: "dot" } });
      }
      traces.push({ type: "scatter", mode: "lines+markers", name: `${label} validation`, legendgroup: label,
        x: c.epochs, y: c.eval_loss });
      if (c.overfitting_from_epoch !== null) flags.push(`${label}: overfitting from epoch ${number(c.overfitting_from_epoch)}`);
    }
    const box = document.getElementById("curve-flags");
    box.replaceChildren(...flags.map((f) => el("span", { className: "flag" }, f)));
    plot("chart-curves", traces, layout({ xaxis: { title: { text: "epoch" } }, yaxis: { title: { text: "loss" } } }));
  }

  async function drawOfat(data) {
    const key = data.sweep.stages.map((s) => s.state).join(",");
    if (!changed("ofat", key)) return;
    const result = await fetchJSON(`/api/v1/sweeps/${sweepId}/ofat`);
    if (!result.ok || !result.body.stages.length) return message("chart-ofat", "No OFAT stage has completed.");
    const box = document.getElementById("chart-ofat");
    box.replaceChildren();
    for (const stage of result.body.stages) {
      const node = el("div", { className: "chart ofat-stage", "data-stage": stage.stage });
      box.append(el("h3", {}, `${stage.stage}: ${result.body.metric} per moved value (baseline ± std = noise band)`), node);
      plot(node, ofatTraces(stage), ofatLayout(stage));
    }
  }

  function ofatTraces(stage) {
    const x = [], y = [], err = [], colors = [];
    for (const p of stage.parameters) {
      for (const e of p.effects) {
        x.push(esc(`${p.name}=${number(e.value)}`));
        y.push(e.mean);
        err.push(e.std || 0);
        colors.push(p.noise ? "#aaaaaa" : "#3b6fb6");
      }
    }
    return [{ type: "bar", x, y, marker: { color: colors }, name: "mean ± std",
      error_y: { type: "data", array: err, visible: true } }];
  }

  function ofatLayout(stage) {
    const shapes = [];
    if (stage.band) {
      shapes.push({ type: "rect", xref: "paper", x0: 0, x1: 1, y0: stage.band.low, y1: stage.band.high,
        fillcolor: "rgba(200,120,40,0.18)", line: { width: 0 } });
      shapes.push({ type: "line", xref: "paper", x0: 0, x1: 1, y0: stage.baseline.mean, y1: stage.baseline.mean,
        line: { color: "rgb(200,120,40)", dash: "dash" } });
    }
    // Zoom to the values: from zero, differences of a point or two (what OFAT ranks) vanish.
    return layout({ shapes, showlegend: false, yaxis: { title: { text: esc(metric) }, range: ofatRange(stage) } });
  }

  function ofatRange(stage) {
    const values = [];
    for (const p of stage.parameters) {
      for (const e of p.effects) values.push(e.mean - (e.std || 0), e.mean + (e.std || 0));
    }
    if (stage.band) values.push(stage.band.low, stage.band.high);
    if (stage.baseline && stage.baseline.mean !== null) values.push(stage.baseline.mean);
    const finite = values.filter((v) => Number.isFinite(v));
    if (!finite.length) return undefined;
    const lo = Math.min(...finite), hi = Math.max(...finite);
    const pad = (hi - lo) * 0.15 || Math.abs(hi) * 0.05 || 1;
    return [lo - pad, hi + pad];
  }

  async function drawImportance(data) {
    if (!changed("importance", String(finishedCount(data)))) return;
    const result = await fetchJSON(`/api/v1/sweeps/${sweepId}/importance`);
    const note = document.getElementById("importance-note");
    if (!result.ok) return message("chart-importance", sweepctl.detail(result.body));
    const body = result.body;
    if (body.pending) memo.keys.importance = null; // still computing: ask again next poll
    if (!body.importances.length) {
      note.textContent = "";
      return message("chart-importance", body.reason || "No importance yet.");
    }
    const pending = body.pending ? " (updating…)" : "";
    note.textContent = `Optuna ${body.evaluator} over ${body.trials} completed trials${pending}.`;
    const rows = body.importances.slice().reverse();
    const trace = { type: "bar", orientation: "h", x: rows.map((r) => r.value), y: rows.map((r) => esc(r.name)) };
    plot("chart-importance", [trace], layout({ height: 120 + 30 * rows.length, margin: { t: 20, r: 20, b: 40, l: 160 } }));
  }

  function drawOpen() {
    const data = memo.data;
    if (!data || !window.Plotly) return;
    if (isOpen("panel-objective")) drawObjective(data);
    if (isOpen("panel-parallel")) drawParallel(data);
    if (isOpen("panel-curves")) drawCurves(data, memo.picked);
    if (isOpen("panel-ofat")) drawOfat(data);
    if (isOpen("panel-importance")) drawImportance(data);
  }

  document.addEventListener("DOMContentLoaded", () => {
    for (const panel of document.querySelectorAll(".charts details")) {
      panel.addEventListener("toggle", () => {
        if (!panel.open) return;
        memo.keys = Object.fromEntries(Object.entries(memo.keys).filter(([k]) => !panel.id.endsWith(k)));
        drawOpen();
      });
    }
  });

  return {
    update(data, picked) {
      memo.data = data;
      memo.picked = picked;
      drawOpen();
    },
    pick(picked) {
      memo.picked = picked;
      drawOpen();
    },
  };
})();
