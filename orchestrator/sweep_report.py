"""What `sweepctl list`, `status`, `watch` and the live view of `launch` print about sweeps.

Rendering only: every function reads the store once and returns rich renderables, so the
CLI decides where (and how often) they are printed. Everything shown is derived from the
store alone, so a view of a sweep that another machine is running is as complete as the
orchestrator's own.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from rich.console import JustifyMethod, RenderableType
from rich.table import Table
from rich.text import Text

from sweepctl.orchestrator.report import _cell as format_number
from sweepctl.spec.models import ObjectiveSpec
from sweepctl.storage import Store, SweepRecord, TrialRecord, TrialState

STATE_STYLES = {
    TrialState.PENDING: "dim",
    TrialState.RUNNING: "cyan",
    TrialState.COMPLETED: "green",
    TrialState.PRUNED: "yellow",
    TrialState.FAILED: "red",
}
NOISE_NOTE = "within baseline seed spread"
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


def objective_of(spec: dict[str, Any]) -> ObjectiveSpec:
    """Only the objective is re-validated: a full SweepSpec check would import transformers
    and could reject specs stored by an older sweepctl, and `list` must never fail on those."""
    return ObjectiveSpec.model_validate(spec.get("objective") or {})


def rank_completed(trials: Iterable[TrialRecord], maximize: bool) -> list[TrialRecord]:
    """Best first; the earlier trial wins a tie, so the ranking is stable across reads."""
    done = [t for t in trials if t.state is TrialState.COMPLETED and t.objective is not None]
    sign = -1.0 if maximize else 1.0
    return sorted(done, key=lambda t: (sign * float(t.objective or 0.0), t.number))


def best_trials(store: Store, name: str, top: int) -> list[TrialRecord]:
    """COMPLETED trials best-first; an unknown sweep raises the store's StoreError."""
    maximize = objective_of(store.sweep_spec(name)).maximize
    return rank_completed(store.list_trials(name), maximize)[: max(top, 0)]


def format_value(value: Any) -> str:
    """Learning rates need significant digits, not report.py's fixed four decimals."""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def compact_params(params: dict[str, Any]) -> str:
    return ", ".join(f"{key}={format_value(value)}" for key, value in params.items())


def state_counts(trials: Iterable[TrialRecord]) -> dict[str, int]:
    counts = Counter(t.state.name for t in trials)
    return {state.name: counts.get(state.name, 0) for state in TrialState}


def counts_text(counts: dict[str, int]) -> str:
    """Zero states are left out so the common case ("12 COMPLETED") stays short."""
    parts = [f"{n} {state}" for state, n in counts.items() if n]
    return ", ".join(parts) or "no trials"


def _styled_state(state: TrialState) -> Text:
    return Text(state.name, style=STATE_STYLES.get(state, ""))


# --- sweepctl list --------------------------------------------------------------------


def sweeps_table(store: Store) -> Table:
    table = Table(title="Sweeps", title_justify="left")
    for title in ("Sweep", "State", "Trials done/total", "By state", "Best", "Created"):
        table.add_column(title)
    for sweep in store.list_sweeps():
        table.add_row(*_sweep_row(store, sweep))
    return table


def _sweep_row(store: Store, sweep: SweepRecord) -> list[str]:
    counts = sweep.trial_counts
    done = sum(counts.get(state.name, 0) for state in _FINISHED)
    objective = objective_of(sweep.spec)
    ranked = rank_completed(store.list_trials(sweep.name), objective.maximize)
    best = f"{objective.metric} {format_number(ranked[0].objective)}" if ranked else "-"
    created = sweep.created_at.astimezone().strftime("%Y-%m-%d %H:%M")
    total = sum(counts.values())
    return [sweep.name, sweep.state.name, f"{done}/{total}", counts_text(counts), best, created]


# --- sweepctl watch / launch ----------------------------------------------------------


def max_epochs(trial: TrialRecord, fallback: float | None) -> float | None:
    """Replayed trials store no TrainingArguments; for them the longest completed trial
    is the best estimate of a full run."""
    epochs = (trial.config.get("training") or {}).get("num_train_epochs")
    return float(epochs) if isinstance(epochs, (int, float)) else fallback


def completed_evaluations(trials: Iterable[TrialRecord]) -> float | None:
    runs = [len(t.evaluations) for t in trials if t.state is TrialState.COMPLETED]
    return float(max(runs)) if runs else None


def trials_table(store: Store, name: str, limit: int | None = None) -> Table:
    """Newest last, so a live view that cuts the top keeps the trials still running."""
    trials = store.list_trials(name)
    fallback = completed_evaluations(trials)
    shown = trials[-limit:] if limit else trials
    table = Table(title=f"Trials of {name}", title_justify="left")
    for title, justify in TRIAL_COLUMNS:
        table.add_column(title, justify=justify)
    for trial in shown:
        total = max_epochs(trial, fallback)
        progress = f"{len(trial.evaluations)}/{format_value(total) if total else '?'}"
        table.add_row(
            trial.stage or "-",
            str(trial.number),
            str(trial.id),
            compact_params(trial.params),
            progress,
            format_number(trial.objective),
            _styled_state(trial.state),
        )
    return table


# --- sweepctl status ------------------------------------------------------------------


def status_renderables(store: Store, name: str) -> list[RenderableType]:
    sweep = store.get_sweep(name)
    trials = store.list_trials(name)
    objective = objective_of(sweep.spec)
    parts: list[RenderableType] = [
        Text.from_markup(
            f"[bold]sweep {sweep.name}[/bold]  {sweep.state.name}  "
            f"objective {objective.metric} ({'max' if objective.maximize else 'min'}imize)"
        ),
        *([Text(f"why: {sweep.error}")] if sweep.error else []),
        *([Text(f"driven by {sweep.owner}")] if sweep.owner else []),
        _stages_table(sweep, trials),
        _best_line(trials, objective),
    ]
    for stage in sweep.stages:
        ofat = (stage.summary or {}).get("ofat")
        if ofat:  # the summary OfatStrategy.conclude stores
            parts.append(ofat_table(stage.name, ofat, objective.metric))
    savings = pruning_savings_line(trials)
    if savings:
        parts.append(savings)
    return parts


def _stages_table(sweep: SweepRecord, trials: list[TrialRecord]) -> Table:
    table = Table(title="Stages", title_justify="left")
    for title in ("Stage", "Strategy", "State", "Trials"):
        table.add_column(title)
    for stage in sweep.stages:
        mine = [t for t in trials if t.stage == stage.name]
        counts = counts_text(state_counts(mine))
        counts += _outcome_notes(stage.summary or {}, mine)
        table.add_row(stage.name, stage.strategy, stage.state.name, counts)
    unstaged = [t for t in trials if t.stage is None]
    if unstaged:  # single `sweepctl trial` runs adopted by the sweep
        table.add_row("(single trials)", "-", "-", counts_text(state_counts(unstaged)))
    return table


def _outcome_notes(summary: dict[str, object], trials: list[TrialRecord]) -> str:
    """Reused answers, retried attempts, given-up points and why trials failed, so a
    stage that looks COMPLETED never hides what it lost."""
    notes = [
        f"{summary[key]} {label}"
        for key, label in (("reused", "reused"), ("retried", "retried"), ("given_up", "given up"))
        if summary.get(key)
    ]
    kinds: dict[str, int] = {}
    for trial in trials:
        if trial.failure_kind:
            kinds[trial.failure_kind] = kinds.get(trial.failure_kind, 0) + 1
    if kinds:
        notes.append("failed: " + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())))
    return "".join(f", {note}" for note in notes)


def _best_line(trials: list[TrialRecord], objective: ObjectiveSpec) -> Text:
    ranked = rank_completed(trials, objective.maximize)
    if not ranked:
        return Text("best so far: no completed trial yet")
    best = ranked[0]
    return Text(
        f"best so far: trial {best.id} (stage {best.stage or '-'}, #{best.number}) "
        f"{objective.metric} {format_number(best.objective)}  {compact_params(best.params)}"
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


def pruning_savings(trials: list[TrialRecord]) -> tuple[float, float]:
    """(trial-epochs saved, trial-epochs the pruned trials would have used in full)."""
    fallback = completed_evaluations(trials)
    saved = planned = 0.0
    for trial in trials:
        if trial.state is not TrialState.PRUNED:
            continue
        total = max_epochs(trial, fallback)
        if total is None:
            continue
        planned += total
        saved += max(0.0, total - len(trial.evaluations))
    return saved, planned


def pruning_savings_line(trials: list[TrialRecord]) -> Text | None:
    saved, planned = pruning_savings(trials)
    if planned <= 0:
        return None
    return Text(
        f"pruning saved {saved:g} trial-epochs ({100 * saved / planned:.1f}% of the compute "
        "the pruned trials would have used)"
    )
