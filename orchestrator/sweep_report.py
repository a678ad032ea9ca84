"""What `sweepctl list`, `status`, `watch` and the live view of `launch` print about sweeps.

Rendering only: every function reads the store and returns rich renderables, so the CLI
decides where (and how often) they are printed. Everything shown is derived from the store
alone, so a view of a sweep that another machine is running is as complete as the
orchestrator's own.

Every read is one of the dashboard's aggregate views (`storage.views`: sweep rows without
specs, per-stage counts, `TrialSummary` rows, the best trials, epoch counts): never a whole
sweep's trials with their evaluations, so `list`, `status`, `watch` and the live table of
`launch` cost the same at 10 trials and at 10,000, refreshed every second or once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from rich.console import JustifyMethod, RenderableType
from rich.table import Table
from rich.text import Text

from sweepctl.orchestrator.budget import budget_lines, stored_budget_report
from sweepctl.orchestrator.confirmed import SUMMARY_KEY as CONFIRM_KEY
from sweepctl.orchestrator.confirmed import Confirmed, confirmed_best, mean_ci, winner_text
from sweepctl.orchestrator.diagnosis import sweep_warnings
from sweepctl.orchestrator.report import _cell as format_number
from sweepctl.storage import Store, TrialRecord, TrialState, TrialSummary
from sweepctl.storage.views import EpochStats, StageCount, SweepRow

STATE_STYLES = {
    TrialState.PENDING: "dim",
    TrialState.RUNNING: "cyan",
    TrialState.COMPLETED: "green",
    TrialState.PRUNED: "yellow",
    TrialState.FAILED: "red",
}
NOISE_NOTE = "within baseline seed spread"
DEGENERATE_MARK = "degenerate"
WARNING_STYLE = "bold yellow"
TRIAL_COLUMNS: tuple[tuple[str, JustifyMethod], ...] = (
    ("Stage", "left"),
    ("#", "right"),
    ("ID", "right"),
    ("Params", "left"),
    ("Epochs", "right"),
    ("Objective", "right"),
    ("State", "left"),
)
OFAT_COLUMNS: tuple[tuple[str, JustifyMethod], ...] = (
    ("Parameter", "left"),
    ("Impact", "right"),
    ("Best value", "right"),
    ("Effect per value", "left"),
    ("Noise", "left"),
)
_FINISHED = tuple(state for state in TrialState if state.is_finished)


@dataclass(frozen=True)
class Objective:
    """A stored spec's objective as the views read it. Not `spec.models.ObjectiveSpec`:
    importing the spec models (pydantic and every section's rules) is a fifth of what a
    `sweepctl status` costs, and the spec was validated when the sweep was launched."""

    metric: str
    maximize: bool


def objective_of(spec: dict[str, Any]) -> Objective:
    """Only the objective is read, with ObjectiveSpec's defaults (f1; without a direction
    only loss is minimised): a full SweepSpec check would import transformers and could
    reject specs stored by an older sweepctl, and `list` must never fail on those."""
    section = spec.get("objective")
    section = section if isinstance(section, dict) else {}
    metric = str(section.get("metric", "f1"))
    direction = section.get("direction")
    maximize = metric != "loss" if direction is None else direction == "maximize"
    return Objective(metric, maximize)


def best_trials(store: Store, name: str, top: int) -> list[TrialRecord]:
    """COMPLETED trials best-first; an unknown sweep raises the store's StoreError. Ranked
    in SQL, and only the `top` winners are read in full (an export needs their config)."""
    maximize = objective_of(store.sweep_spec(name)).maximize
    sweep_id = store.sweep_id(name)
    if sweep_id is None:
        return []
    return [store.get_trial(t.id) for t in store.ranked_trials(sweep_id, maximize, top)]


def format_value(value: Any) -> str:
    """Learning rates need significant digits, not report.py's fixed four decimals."""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def compact_params(params: dict[str, Any]) -> str:
    return ", ".join(f"{key}={format_value(value)}" for key, value in params.items())


def state_counts(counts: Iterable[StageCount]) -> dict[str, int]:
    """Every state, zeros included, in TrialState order, from the per-stage aggregates."""
    totals = {state.name: 0 for state in TrialState}
    for count in counts:
        totals[count.state.name] += count.trials
    return totals


def counts_text(counts: dict[str, int]) -> str:
    """Zero states are left out so the common case ("12 COMPLETED") stays short."""
    parts = [f"{n} {state}" for state, n in counts.items() if n]
    return ", ".join(parts) or "no trials"


def _styled_state(state: TrialState) -> Text:
    return Text(state.name, style=STATE_STYLES.get(state, ""))


# --- sweepctl list --------------------------------------------------------------------


def sweeps_table(store: Store) -> Table:
    """Three reads whatever the number of sweeps: rows without specs, each spec's
    objective section, and the lowest and highest completed objective per sweep."""
    table = Table(title="Sweeps", title_justify="left")
    for title in ("Sweep", "State", "Trials done/total", "By state", "Best", "Created"):
        table.add_column(title)
    sweeps = store.sweep_rows()
    objectives = store.sweep_objectives()
    best = store.best_objectives()
    for sweep in sweeps:
        objective = objective_of({"objective": objectives.get(sweep.id)})
        table.add_row(*_sweep_row(sweep, objective, best.get(sweep.id)))
    return table


def _sweep_row(
    sweep: SweepRow, objective: Objective, extremes: tuple[float, float] | None
) -> list[str]:
    counts = sweep.trial_counts
    done = sum(counts.get(state.name, 0) for state in _FINISHED)
    best = "-"
    if extremes is not None:
        value = extremes[1] if objective.maximize else extremes[0]
        best = f"{objective.metric} {format_number(value)}"
    created = sweep.created_at.astimezone().strftime("%Y-%m-%d %H:%M")
    total = sum(counts.values())
    return [sweep.name, sweep.state.name, f"{done}/{total}", counts_text(counts), best, created]


# --- sweepctl watch / launch ----------------------------------------------------------


def max_epochs(planned: Any, fallback: float | None) -> float | None:
    """`planned` is the trial's stored training.num_train_epochs. Replayed trials store no
    TrainingArguments; for them the longest completed trial is the best estimate of a
    full run."""
    return float(planned) if isinstance(planned, (int, float)) else fallback


def longest_completed(stats: EpochStats) -> float | None:
    return float(stats.longest_completed) if stats.longest_completed is not None else None


def trials_table(store: Store, name: str, limit: int | None = None) -> Table:
    """Newest last, so a live view that cuts the top keeps the trials still running. Reads
    the `limit` shown rows and two aggregates, however many trials the sweep has."""
    table = Table(title=f"Trials of {name}", title_justify="left")
    for title, justify in TRIAL_COLUMNS:
        table.add_column(title, justify=justify)
    sweep_id = store.sweep_id(name)
    if sweep_id is None:  # an unknown sweep simply has no trials
        return table
    shown = store.last_trials(sweep_id, limit or None)
    planned = store.planned_epochs([trial.id for trial in shown])
    fallback = longest_completed(store.epoch_stats(sweep_id))
    for trial in shown:
        table.add_row(*_trial_cells(trial, max_epochs(planned.get(trial.id), fallback)))
    return table


def _trial_cells(trial: TrialSummary, total: float | None) -> list[RenderableType]:
    state = _styled_state(trial.state)
    if trial.degenerate:  # learnt nothing (workers.noise); `sweepctl show` says why
        state.append(f" {DEGENERATE_MARK}", style="yellow")
    return [
        trial.stage or "-",
        str(trial.number),
        str(trial.id),
        compact_params(trial.params),
        f"{trial.evaluations}/{format_value(total) if total else '?'}",
        format_number(trial.objective),
        state,
    ]


# --- sweepctl status ------------------------------------------------------------------


def status_renderables(store: Store, name: str, with_warnings: bool = True) -> list[RenderableType]:
    """`with_warnings`: end with the sweep's warnings (orchestrator.diagnosis); `launch`
    prints them itself, as its last lines."""
    sweep = store.sweep_row(name)  # an unknown sweep raises the store's StoreError
    objective = objective_of({"objective": store.sweep_objectives([sweep.id]).get(sweep.id)})
    counts = store.stage_counts(sweep.id)
    parts: list[RenderableType] = [
        Text.from_markup(
            f"[bold]sweep {sweep.name}[/bold]  {sweep.state.name}  "
            f"objective {objective.metric} ({'max' if objective.maximize else 'min'}imize)"
        ),
        *([Text(f"why: {sweep.error}")] if sweep.error else []),
        *([Text(f"driven by {sweep.owner}")] if sweep.owner else []),
        *_budget_line(store, name),
        _stages_table(sweep, counts, store.failure_kinds(sweep.id)),
    ]
    confirmed = confirmed_best(sweep.stages)
    label = "best so far" if confirmed is None else "best single trial"
    ranked = store.ranked_trials(sweep.id, objective.maximize, 1)
    parts.append(_best_line(ranked, objective, label))
    if confirmed is not None:  # what the sweep's best is once a confirm stage has run
        parts.append(confirmed_line(confirmed))
    for stage in sweep.stages:
        ofat = (stage.summary or {}).get("ofat")
        if ofat:  # the summary OfatStrategy.conclude stores
            parts.append(ofat_table(stage.name, ofat, objective.metric))
        confirm = (stage.summary or {}).get(CONFIRM_KEY)
        if confirm and confirm.get("winner"):  # ConfirmStrategy.conclude's summary
            parts.append(confirm_table(stage.name, confirm))
    savings = pruning_savings_line(store.epoch_stats(sweep.id))
    if savings:
        parts.append(savings)
    if with_warnings:
        parts += warning_lines(sweep_warnings(store, sweep, objective.metric, objective.maximize))
    return parts


def _budget_line(store: Store, name: str) -> list[Text]:
    """`budget: wall time 1h02m of 8h (6h58m left); 0 of 5 configurations in a row ...`"""
    report = stored_budget_report(store, name)
    if report is None:
        return []
    return [Text("budget: " + "; ".join(budget_lines(report)), style="dim")]


def warnings_of(store: Store, name: str) -> list[str]:
    """The sweep's warnings (orchestrator.diagnosis) for `export` and `launch`."""
    sweep = store.sweep_row(name)
    objective = objective_of({"objective": store.sweep_objectives([sweep.id]).get(sweep.id)})
    return sweep_warnings(store, sweep, objective.metric, objective.maximize)


def warning_lines(warnings: list[str]) -> list[Text]:
    """Prefixed as the CLI's stderr warnings are, so a reader scanning for them finds them."""
    return [Text(f"warning: {line}", style=WARNING_STYLE) for line in warnings]


def _stages_table(
    sweep: SweepRow, counts: list[StageCount], failures: dict[str | None, dict[str, int]]
) -> Table:
    table = Table(title="Stages", title_justify="left")
    for title in ("Stage", "Strategy", "State", "Trials"):
        table.add_column(title)
    for stage in sweep.stages:
        mine = [c for c in counts if c.stage == stage.name]
        text = counts_text(state_counts(mine))
        text += _outcome_notes(stage.summary or {}, failures.get(stage.name, {}))
        table.add_row(stage.name, stage.strategy, stage.state.name, text)
    unstaged = [c for c in counts if c.stage is None]
    if unstaged:  # single `sweepctl trial` runs adopted by the sweep
        table.add_row("(single trials)", "-", "-", counts_text(state_counts(unstaged)))
    return table


def _outcome_notes(summary: dict[str, object], kinds: dict[str, int]) -> str:
    """Reused answers, retried attempts, given-up points and why trials failed, so a
    stage that looks COMPLETED never hides what it lost."""
    notes = [
        f"{summary[key]} {label}"
        for key, label in (("reused", "reused"), ("retried", "retried"), ("given_up", "given up"))
        if summary.get(key)
    ]
    if kinds:
        notes.append("failed: " + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())))
    return "".join(f", {note}" for note in notes)


def _best_line(ranked: list[TrialSummary], objective: Objective, label: str) -> Text:
    if not ranked:
        return Text(f"{label}: no completed trial yet")
    best = ranked[0]
    flag = f"  [{DEGENERATE_MARK}: {best.degenerate}]" if best.degenerate else ""
    return Text(
        f"{label}: trial {best.id} (stage {best.stage or '-'}, #{best.number}) "
        f"{objective.metric} {format_number(best.objective)}  {compact_params(best.params)}" + flag
    )


def confirmed_line(confirmed: Confirmed) -> Text:
    """The sweep's answer when a confirm stage ran: its pick with the seed interval, or
    that the top configurations tie, naming them."""
    return Text(winner_text(confirmed, compact_params))


def confirm_table(stage: str, confirm: dict[str, Any]) -> Table:
    """`confirm` is the summary ConfirmStrategy.conclude stores: mean ± 95% CI over seeds
    per configuration, and the paired difference to the winner over the same seeds."""
    vs_base = confirm.get("vs_baseline")
    table = Table(
        title=f"Confirmed configurations, stage {stage} (pick: {confirm.get('pick')})",
        title_justify="left",
        caption=f"winner - baseline: {paired_text(vs_base)}" if vs_base else None,
        caption_justify="left",
    )
    for title in ("Rank", "Params", f"{confirm.get('metric')} mean ± CI", "Δ vs winner", ""):
        table.add_column(title)
    rows = list(confirm.get("configurations") or [])
    if confirm.get("baseline") and confirm["baseline"] not in rows:
        rows.append({**confirm["baseline"], "verdict": "baseline"})
    for row in rows:
        verdict = row.get("verdict", "")
        table.add_row(
            str(row.get("rank") or "-"),
            compact_params(row["params"]),
            mean_ci(row),
            paired_text(row.get("vs_winner")) if row.get("vs_winner") else "-",
            verdict + (" (baseline)" if row.get("is_baseline") else ""),
        )
    return table


def paired_text(test: dict[str, Any]) -> str:
    return (
        f"{test['mean_difference']:+.4f} [{test['low']:+.4f}, {test['high']:+.4f}] "
        f"p={test['p_value']:.3g}, n={test['n']}"
    )


def mean_std(mean: float | None, std: float | None) -> str:
    """A single OFAT repeat has no spread; printing "± -" would suggest a missing number."""
    if mean is None:
        return "-"
    return f"{mean:.4f}" if std is None else f"{mean:.4f} ± {std:.4f}"


def ofat_table(stage: str, ofat: dict[str, Any], metric: str) -> Table:
    """`ofat` is OfatReport.to_dict() as stored in the stage summary."""
    baseline = ofat.get("baseline") or {}
    table = Table(
        title=f"OFAT ranking, stage {stage}",
        title_justify="left",
        caption=(
            f"baseline {metric} {mean_std(baseline.get('mean'), baseline.get('std'))} "
            f"(n={baseline.get('n', 0)})"
        ),
        caption_justify="left",
    )
    for title, justify in OFAT_COLUMNS:
        table.add_column(title, justify=justify)
    for row in ofat.get("ranking", []):
        effects = "\n".join(
            f"{format_value(e['value'])}: {mean_std(e['mean'], e.get('std'))} (Δ {e['delta']:+.4f})"
            for e in row.get("effects", [])
        )
        table.add_row(
            row["name"],
            f"{row.get('impact', 0.0):.4f}",
            format_value(row.get("best_value")),
            effects or "-",
            NOISE_NOTE if row.get("noise") else "",
        )
    return table


def pruning_savings(stats: EpochStats) -> tuple[float, float]:
    """(trial-epochs saved, trial-epochs the pruned trials would have used in full)."""
    fallback = longest_completed(stats)
    saved = planned = 0.0
    for budget, ran, trials in stats.pruned:
        total = max_epochs(budget, fallback)
        if total is None:
            continue
        planned += total * trials
        saved += max(0.0, total - ran) * trials
    return saved, planned


def pruning_savings_line(stats: EpochStats) -> Text | None:
    saved, planned = pruning_savings(stats)
    if planned <= 0:
        return None
    return Text(
        f"pruning saved {saved:g} trial-epochs ({100 * saved / planned:.1f}% of the compute "
        "the pruned trials would have used)"
    )
