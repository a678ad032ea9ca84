/* The sweep page's live part: polls /api/v1/sweeps/{id}/trials every 2 s and redraws the
   header, stage timeline, best configuration and the sortable, filterable trial table
   without reloading the page. Charts live in charts.js (window.sweepCharts); warnings,
   confirmed configurations and the comparison in results.js (window.sweepResults). */
"use strict";

(() => {
  const { el, number, duration, when, fetchJSON, detail } = sweepctl;
  const root = document.getElementById("sweep");
  const sweepId = root.dataset.sweepId;
  const POLL_MS = 2000;
  const MAX_ROWS = 500; // the DOM stays small at 10,000 trials; filter or sort to see others
  const FINISHED = new Set(["COMPLETED", "FAILED", "CANCELLED", "STOPPED"]);
  const view = { data: null, sortKey: "number", sortParam: null, desc: false, picked: new Set() };
  const rows = new Map(); // trial id -> row; polls after the first send changed rows only
  let cursor = null;

  function merge(body) {
    if (body.full) rows.clear();
    for (const row of body.trials) rows.set(row.id, row);
    cursor = body.cursor;
    body.trials = [...rows.values()].sort((a, b) => a.number - b.number);
    return body;
  }

  async function poll() {
    const live = document.getElementById("live");
    let finished = false;
    try {
      const query = cursor ? `?since=${encodeURIComponent(cursor)}` : "";
      const result = await fetchJSON(`/api/v1/sweeps/${sweepId}/trials${query}`);
      if (result.ok) {
        view.data = merge(result.body);
        render();
        finished = FINISHED.has(result.body.sweep.state);
        live.textContent = finished
          ? "sweep finished; live updates stopped"
          : `live · updated ${new Date().toLocaleTimeString()}`;
      } else {
        live.textContent = "update failed: " + detail(result.body);
      }
    } catch (err) {
      live.textContent = "update failed: " + err;
    }
    if (!finished) setTimeout(poll, POLL_MS);
  }

  function render() {
    const sweep = view.data.sweep;
    renderHeader(sweep);
    renderStages(sweep.stages);
    renderBest(sweep);
    renderTable();
    if (window.sweepResults) window.sweepResults.update(view.data);
    if (window.sweepCharts) window.sweepCharts.update(view.data, pickedIds());
  }

  function renderHeader(sweep) {
    const badge = document.getElementById("sweep-state");
    badge.textContent = sweep.state;
    badge.className = "state state-" + sweep.state.toLowerCase();
    document.getElementById("sweep-elapsed").textContent = duration(sweep.elapsed_s);
    document.getElementById("sweep-started").textContent = when(sweep.started_at);
    const counts = Object.entries(sweep.trial_counts).filter(([, n]) => n);
    document.getElementById("sweep-counts").textContent = counts
      .map(([k, n]) => `${k.toLowerCase()} ${n}`)
      .join(", ");
    const why = document.getElementById("sweep-error");
    why.textContent = sweep.error || "";
    why.hidden = !sweep.error;
    renderBudget(sweep.budget);
    document.getElementById("cancel").hidden = !["PENDING", "RUNNING"].includes(sweep.state);
    document.getElementById("resume").hidden = !resumable(sweep);
  }

  // Used, limit and left per budget key (orchestrator.budget's lines, as `status` prints).
  function renderBudget(budget) {
    const box = document.getElementById("budget");
    box.hidden = !budget;
    if (!budget) return;
    box.querySelector("ul").replaceChildren(...budget.lines.map((text) => el("li", {}, text)));
    box.classList.toggle("exhausted", Boolean(budget.exhausted));
  }

  // The server resumes only the sweeps it runs; a terminal's sweep is resumed from there.
  function resumable(sweep) {
    return sweep.controller === "server" && ["FAILED", "CANCELLED", "STOPPED"].includes(sweep.state);
  }

  function renderStages(stages) {
    const list = document.getElementById("stages");
    list.replaceChildren(
      ...stages.map((st) => {
        const item = el("li", { className: "stage state-" + st.state.toLowerCase() });
        const planned = st.planned === null ? "?" : st.planned;
        item.append(
          el("span", { className: "stage-name" }, st.name),
          el("span", { className: "muted" }, st.strategy),
          el("span", { className: "state state-" + st.state.toLowerCase() }, st.state),
          el("span", {}, `${st.done}/${planned} trials${st.reused ? ` (${st.reused} reused)` : ""}`),
        );
        return item;
      }),
    );
  }

  function renderBest(sweep) {
    const box = document.getElementById("best");
    const best = sweep.best;
    if (!best) {
      box.replaceChildren(el("p", { className: "empty" }, "No completed trial yet."));
      return;
    }
    const line = el("p", {}, "Trial ");
    line.append(
      el("a", { href: `/trials/${best.id}` }, `#${best.number}`),
      ` (${best.stage || "–"}): ${sweep.objective.metric} = `,
      el("strong", {}, number(best.objective)),
    );
    const body = el("tbody");
    for (const [name, value] of Object.entries(best.params)) {
      const row = el("tr");
      row.append(el("th", {}, name), el("td", {}, number(value)));
      body.append(row);
    }
    const table = el("table", { className: "kv" });
    table.append(body);
    box.replaceChildren(line, table);
  }

  function visibleTrials() {
    const text = document.getElementById("trial-filter").value.trim().toLowerCase();
    const wanted = document.getElementById("state-filter").value;
    let rows = view.data.trials;
    if (wanted) rows = rows.filter((t) => t.state === wanted);
    if (text) rows = rows.filter((t) => searchable(t).includes(text));
    return rows.slice().sort(compare);
  }

  function searchable(trial) {
    const params = Object.entries(trial.params).map(([k, v]) => `${k}=${v}`);
    return [trial.number, trial.stage, trial.state, ...params].join(" ").toLowerCase();
  }

  function sortValue(trial) {
    return view.sortKey === "param" ? trial.params[view.sortParam] : trial[view.sortKey];
  }

  function compare(a, b) {
    const x = sortValue(a), y = sortValue(b);
    if (x === y) return a.number - b.number;
    if (x === null || x === undefined) return 1; // blanks last either way
    if (y === null || y === undefined) return -1;
    const order = typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y));
    return view.desc ? -order : order;
  }

  function renderTable() {
    const rows = visibleTrials();
    const names = view.data.parameters.map((p) => p.name);
    const body = document.querySelector("#trials tbody");
    body.replaceChildren(...rows.slice(0, MAX_ROWS).map((t) => tableRow(t, names)));
    const shown = Math.min(rows.length, MAX_ROWS);
    document.getElementById("trial-count").textContent =
      `${shown} of ${rows.length} shown (${view.data.trials.length} trials)`;
    for (const th of document.querySelectorAll("#trials th[data-sort]")) {
      const active = th.dataset.sort === view.sortKey && (th.dataset.param || null) === view.sortParam;
      th.setAttribute("aria-sort", active ? (view.desc ? "descending" : "ascending") : "none");
    }
  }

  function tableRow(trial, names) {
    const row = el("tr", { "data-trial-id": trial.id, "data-state": trial.state });
    const pick = el("input", { type: "checkbox", "aria-label": `curve of trial ${trial.number}` });
    pick.checked = view.picked.has(trial.id);
    pick.addEventListener("change", () => togglePick(trial.id, pick.checked));
    const link = el("a", { href: `/trials/${trial.id}` }, `#${trial.number}`);
    const cells = [
      cell(pick, "pick"),
      cell(link, "num"),
      el("td", {}, trial.stage || "–"),
      cell(el("span", { className: "state state-" + trial.state.toLowerCase() }, trial.state)),
      ...names.map((n) => el("td", { className: "num" }, number(trial.params[n]))),
      el("td", { className: "num objective" }, number(trial.objective)),
      el("td", { className: "num" }, number(trial.epochs)),
      el("td", { className: "num" }, duration(trial.duration_s)),
    ];
    if (trial.error) row.title = trial.error;
    row.append(...cells);
    return row;
  }

  function cell(child, className) {
    const td = el("td", { className });
    td.append(child);
    return td;
  }

  function pickedIds() {
    return Array.from(view.picked);
  }

  function togglePick(id, on) {
    if (on) view.picked.add(id);
    else view.picked.delete(id);
    if (window.sweepCharts) window.sweepCharts.pick(pickedIds());
  }

  function bindTable() {
    for (const th of document.querySelectorAll("#trials th[data-sort]")) {
      th.addEventListener("click", () => {
        const param = th.dataset.param || null;
        const same = view.sortKey === th.dataset.sort && view.sortParam === param;
        view.desc = same ? !view.desc : false;
        view.sortKey = th.dataset.sort;
        view.sortParam = param;
        if (view.data) renderTable();
      });
    }
    for (const id of ["trial-filter", "state-filter"]) {
      document.getElementById(id).addEventListener("input", () => view.data && renderTable());
    }
  }

  function bindCancel() {
    const button = document.getElementById("cancel");
    const out = document.getElementById("cancel-result");
    button.addEventListener("click", async () => {
      if (!window.confirm("Cancel this sweep? Its running trials are stopped.")) return;
      button.disabled = true;
      const result = await fetchJSON(`/api/v1/sweeps/${sweepId}/cancel`, { method: "POST" });
      out.textContent = result.ok
        ? `cancelled; ${result.body.stopped_trials} running trial(s) stopped`
        : detail(result.body);
      button.disabled = false;
    });
  }

  function bindResume() {
    const button = document.getElementById("resume");
    const out = document.getElementById("cancel-result");
    button.addEventListener("click", async () => {
      button.disabled = true;
      const result = await fetchJSON(`/api/v1/sweeps/${sweepId}/resume`, { method: "POST" });
      out.textContent = result.ok ? "resumed; completed trials are kept" : detail(result.body);
      button.disabled = false;
      if (result.ok) poll(); // live updates had stopped with the sweep
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    bindTable();
    bindCancel();
    bindResume();
    poll();
  });
})();
