/* The sweep page's answers: the warnings banner, the confirmed configurations (mean ± 95%
   CI over seeds, ties named) and the comparison table users wrote by hand. Banner and
   confirmed table come with every poll (the overview); the comparison reads the Optuna
   study, so it is fetched again only when a stage's state or trial count changed.
   Text only (textContent); the number formats match `sweepctl status` and `compare`. */
"use strict";

window.sweepResults = (() => {
  const { el, fetchJSON, detail } = sweepctl;
  const sweepId = document.getElementById("sweep").dataset.sweepId;
  const memo = { compareKey: null };

  const fixed = (value) => (typeof value === "number" ? value.toFixed(4) : "–");

  /** Python's confirmed.mean_ci: `0.8412 ± 0.0123 (95% CI 0.8289..0.8535, n=5)`. */
  function meanCI(interval) {
    if (!interval || interval.estimate === null || interval.estimate === undefined) return "–";
    const n = interval.n || 0;
    if (n < 2 || interval.low === null || interval.high === null) {
      return `${fixed(interval.estimate)} (n=${n}, no seed interval)`;
    }
    const half = (interval.high - interval.low) / 2;
    const confidence = Math.round(100 * (interval.confidence || 0.95));
    return `${fixed(interval.estimate)} ± ${fixed(half)} (${confidence}% CI ${fixed(interval.low)}..${fixed(interval.high)}, n=${n})`;
  }

  /** One run's evaluation interval: `0.8650 (95% 0.8277..0.8952, wilson, 400 rows)`. */
  function evaluationText(value, interval) {
    if (value === null || value === undefined) return "–";
    if (!interval) return `${fixed(value)} (no interval)`;
    const confidence = Math.round(100 * (interval.confidence || 0.95));
    return `${fixed(value)} (${confidence}% ${fixed(interval.low)}..${fixed(interval.high)}, ${interval.method}, ${interval.n} rows)`;
  }

  const params = (p) => (p ? Object.entries(p).map(([k, v]) => `${k}=${v}`).join(", ") : "–");
  const spent = (c) => `${c.trainings} / ${c.trial_epochs} / ${c.wall_s === null ? "–" : c.wall_s.toFixed(1)}`;

  function row(cells) {
    const tr = el("tr");
    for (const [text, className] of cells) tr.append(el("td", { className }, text));
    return tr;
  }

  function renderWarnings(warnings) {
    const box = document.getElementById("warnings");
    const list = Array.isArray(warnings) ? warnings : [];
    box.hidden = list.length === 0;
    box.querySelector("ul").replaceChildren(...list.map((text) => el("li", {}, text)));
  }

  function renderConfirmed(confirmed) {
    const box = document.getElementById("confirmed");
    if (!confirmed) {
      box.replaceChildren(el("p", { className: "empty" }, "No confirm stage has completed."));
      return;
    }
    const lead = [];
    if (confirmed.tied.length) {
      lead.push(el("p", { className: "warning", id: "confirmed-ties" },
        "The top configurations cannot be told apart: " +
        [confirmed.winner.params, ...confirmed.tied].map(params).join("; ")));
    }
    const title = confirmed.tied.length ? "Picked from the tie" : "Confirmed best";
    lead.push(el("p", { id: "confirmed-winner" },
      `${title} (stage ${confirmed.stage}, pick ${confirmed.pick}): ` +
      `${params(confirmed.winner.params)}  ${confirmed.metric} ${meanCI(confirmed.winner.interval)}`));
    const body = el("tbody");
    const rows = confirmed.configurations.slice();
    if (confirmed.baseline && !rows.some((r) => r.is_baseline)) rows.push({ ...confirmed.baseline, verdict: "baseline" });
    for (const r of rows) {
      const test = r.vs_winner;
      const delta = test ? `${test.mean_difference >= 0 ? "+" : ""}${fixed(test.mean_difference)} (p=${test.p_value.toPrecision(3)})` : "–";
      body.append(row([[r.rank || "–", "num"], [params(r.params)], [meanCI(r.interval), "num interval"],
        [delta, "num"], [(r.verdict || "") + (r.is_baseline ? " (baseline)" : "")]]));
    }
    const table = el("table", { className: "grid", id: "confirmed-table" });
    table.append(head(["rank", "params", `${confirmed.metric} mean ± CI`, "Δ vs winner", ""]), body);
    box.replaceChildren(...lead, table);
  }

  function head(titles) {
    const thead = el("thead");
    const tr = el("tr");
    for (const title of titles) tr.append(el("th", {}, title));
    thead.append(tr);
    return thead;
  }

  function renderComparison(body) {
    const box = document.getElementById("comparison");
    const rows = el("tbody");
    for (const r of body.rows) {
      const objective = r.interval_kind === "seeds" ? meanCI(r.interval) : evaluationText(r.objective, r.interval);
      const notes = [...(r.degenerate ? [`degenerate: ${r.degenerate}`] : []), ...r.notes].join("; ");
      const tr = row([[r.label], [r.stages.join(", ") || "–"], [""], [params(r.params)],
        [objective, "num interval"], [spent(r.compute), "num"], [spent(r.to_reach), "num"], [notes, "notes"]]);
      tr.dataset.kind = r.kind;
      if (r.trial_id !== null) tr.children[2].append(el("a", { href: `/trials/${r.trial_id}` }, `#${r.trial_number}`));
      else tr.children[2].textContent = "–";
      rows.append(tr);
    }
    const table = el("table", { className: "grid", id: "comparison-table" });
    const metric = `${body.metric} (${body.maximize ? "max" : "min"}imize)`;
    table.append(head(["row", "stage", "trial", "params", metric, "spent", "to reach", "notes"]), rows);
    const t = body.total;
    const caption = el("p", { className: "hint" },
      "spent: trainings / trial-epochs / wall s of the row's stages; to reach: the same over every stage up to the row's. " +
      `Sweep total: ${t.trainings} trainings, ${t.trial_epochs} trial-epochs` + (t.wall_s === null ? "." : `, ${t.wall_s.toFixed(1)} s.`));
    box.replaceChildren(table, caption);
  }

  async function refreshComparison(sweep) {
    const key = JSON.stringify(sweep.stages.map((s) => [s.name, s.state, s.done, s.trials]));
    if (key === memo.compareKey) return;
    memo.compareKey = key;
    const box = document.getElementById("comparison");
    try {
      const result = await fetchJSON(`/api/v1/sweeps/${sweepId}/compare`);
      if (result.ok) renderComparison(result.body);
      else box.replaceChildren(el("p", { className: "error-line" }, detail(result.body)));
    } catch (err) {
      memo.compareKey = null; // asked again with the next poll
      box.replaceChildren(el("p", { className: "error-line" }, "comparison failed: " + err));
    }
  }

  return {
    update(data) {
      renderWarnings(data.sweep.warnings);
      renderConfirmed(data.sweep.confirmed);
      refreshComparison(data.sweep);
    },
    meanCI,
  };
})();
