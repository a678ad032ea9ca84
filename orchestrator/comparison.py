"""The comparison users wrote by hand: baseline, best OFAT move, best grid point, best
Bayesian trial and confirmed winner, each with its interval and the compute it took.

Why: users pasted these five numbers into a table to argue which plan paid off, with one
seed each and no cost beside them, so a 0.3-point "win" inside a 3.5-point evaluation
interval read like a result. `sweepctl compare`, the API's `/sweeps/{id}/compare` and the
dashboard show this one table, built here from the store and the sweep's Optuna study.

Rows, by the strategy name of each stage (a report's labels: a plugin strategy of another
name gets no row, but its compute counts towards the rows after it):

    baseline   the first run of the spec's own values (OFAT's or confirm's baseline role),
               wherever it ran; always shown, "-" while the sweep has not trained it
    ofat       the best completed OFAT trial that moved a parameter
    grid       the best completed grid point
    bayes      the best completed trial of bayes (tpe, gp) and random stages
    confirmed  the last completed confirm stage's pick
A row whose kind the plan has no stage of is left out; a kind the plan has but with no
completed trial yet is shown with "-" and a note saying so.

Objective: a single-trial row shows its training's evaluation interval
(`metrics.objective_interval`, Wilson or bootstrap; none for loss objectives and replays);
the confirmed winner shows its mean ± 95% t interval over its seeds. A point a stage
answered from an earlier run (orchestrator.reuse) is that earlier run's training.

Compute: `trainings` are the store rows of the row's stages that started (a reused answer
trains nothing), `trial_epochs` the epochs each reached, `wall_s` each stage's first start
to its last finish, summed over stages. `to_reach` is the same over every stage up to the
row's last stage in plan order: what the sweep had spent when that row's answer was
known. The baseline's compute, both, is its own training.
"""

from __future__ import annotations

import functools
import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState
from rich.table import Table

from sweepctl.orchestrator.confirmed import Confirmed, confirmed_best, mean_ci
from sweepctl.orchestrator.reuse import REUSED_ATTR
from sweepctl.orchestrator.search import CONFIG_ATTR, REPEAT_ATTR, STAGE_ATTR
from sweepctl.orchestrator.sweep_report import compact_params, format_value, objective_of
from sweepctl.storage import Store, SweepRecord, TrialSummary, optuna_storage
from sweepctl.workers.noise import DEGENERATE_KEY, OBJECTIVE_INTERVAL_KEY

# (kind, label, strategy names of the stages it reads), in the table's order
KINDS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("baseline", "baseline", ()),
    ("ofat", "best OFAT move", ("ofat",)),
    ("grid", "best grid point", ("grid",)),
    ("bayes", "best Bayesian trial", ("bayes", "random")),
    ("confirmed", "confirmed winner", ("confirm",)),
)
BASELINE_ROLE = "baseline"


@dataclass(frozen=True)
class Compute:
    trainings: int = 0
    trial_epochs: float = 0.0
    wall_s: float | None = None

    def __add__(self, other: Compute) -> Compute:
        walls = [w for w in (self.wall_s, other.wall_s) if w is not None]
        return Compute(
            self.trainings + other.trainings,
            self.trial_epochs + other.trial_epochs,
            sum(walls) if walls else None,
        )

    def text(self) -> str:
        wall = f", {self.wall_s:.1f} s" if self.wall_s is not None else ""
        return f"{self.trainings} trainings, {self.trial_epochs:g} trial-epochs{wall}"

    def cell(self) -> str:
        """`trainings / trial-epochs / wall s`, as the table's caption explains."""
        wall = f"{self.wall_s:.1f}" if self.wall_s is not None else "-"
        return f"{self.trainings} / {self.trial_epochs:g} / {wall}"


@dataclass(frozen=True)
class Row:
    """`interval_kind`: "evaluation" (one run's evaluation set), "seeds" (a t interval over
    seeds) or None (no interval: a loss objective, a replay, no trial yet)."""

    kind: str
    label: str
    stages: list[str]
    params: dict[str, Any] | None = None
    objective: float | None = None
    interval: dict[str, Any] | None = None
    interval_kind: str | None = None
    trial_id: int | None = None
    trial_number: int | None = None
    trained_in: str | None = None  # the stage whose training answered the row
    degenerate: str | None = None
    notes: list[str] = field(default_factory=list)
    compute: Compute = Compute()
    to_reach: Compute = Compute()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Comparison:
    sweep: str
    metric: str
    maximize: bool
    rows: list[Row]
    total: Compute

    def row(self, kind: str) -> Row | None:
        return next((row for row in self.rows if row.kind == kind), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "sweep": self.sweep,
            "metric": self.metric,
            "maximize": self.maximize,
            "rows": [row.to_dict() for row in self.rows],
            "total": asdict(self.total),
        }


@dataclass(frozen=True)
class _Sweep:
    """What every row reads: stages in plan order, the study's trials, the store rows by
    Optuna number, and each stage's compute."""

    store: Store
    record: SweepRecord
    maximize: bool
    trials: list[FrozenTrial]
    rows: dict[int, TrialSummary]
    compute: dict[str, Compute]

    def stages_of(self, strategies: tuple[str, ...]) -> list[str]:
        return [s.name for s in self.record.stages if s.strategy in strategies]

    def to_reach(self, stages: list[str]) -> Compute:
        """Every stage up to the last of `stages`, in plan order."""
        names = [s.name for s in self.record.stages]
        last = max(names.index(stage) for stage in stages)
        return _sum(self.compute.get(name, Compute()) for name in names[: last + 1])


def compare_sweep(store: Store, sweep: SweepRecord, db_url: str) -> Comparison:
    """`db_url`: the unredacted URL (the store's own is redacted) for the Optuna study."""
    objective = objective_of(sweep.spec)
    summaries = store.trial_summaries(sweep.id)
    by_number = {t.optuna_trial_number: t for t in summaries if t.optuna_trial_number is not None}
    data = _Sweep(
        store,
        sweep,
        objective.maximize,
        _study_trials(db_url, sweep.name),
        by_number,
        stage_compute(summaries),
    )
    rows = [_row_of(data, kind, label, strategies) for kind, label, strategies in KINDS]
    shown = [row for row in rows if row is not None]
    total = _sum(data.compute.get(s.name, Compute()) for s in sweep.stages)
    return Comparison(sweep.name, objective.metric, objective.maximize, shown, total)


def _study_trials(db_url: str, name: str) -> list[FrozenTrial]:
    """The study's trials by number; none before the sweep's first stage has started."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.load_study(study_name=name, storage=_storage(db_url))
    except KeyError:
        return []
    return sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)


@functools.lru_cache(maxsize=8)
def _storage(db_url: str) -> Any:
    """One Optuna storage (and engine) per database, not one per dashboard request."""
    return optuna_storage(db_url)


def stage_compute(summaries: list[TrialSummary]) -> dict[str, Compute]:
    """Per stage: trainings that started, the epochs they reached, first start to last
    finish. Single `sweepctl trial` runs (no stage) belong to no row."""
    by_stage: dict[str, list[TrialSummary]] = {}
    for trial in summaries:
        if trial.stage is not None and trial.started_at is not None:
            by_stage.setdefault(trial.stage, []).append(trial)
    return {stage: _compute(trials) for stage, trials in by_stage.items()}


def _compute(trials: list[TrialSummary]) -> Compute:
    epochs = sum(_epochs(t) for t in trials)
    starts = [t.started_at for t in trials if t.started_at is not None]
    ends = [t.finished_at for t in trials if t.finished_at is not None]
    wall = (max(ends) - min(starts)).total_seconds() if starts and ends else None
    return Compute(len(trials), epochs, max(0.0, wall) if wall is not None else None)


def _epochs(trial: TrialSummary) -> float:
    return float(trial.last_epoch if trial.last_epoch is not None else trial.evaluations)


def _sum(parts: Any) -> Compute:
    total = Compute()
    for part in parts:
        total = total + part
    return total


def _row_of(data: _Sweep, kind: str, label: str, strategies: tuple[str, ...]) -> Row | None:
    if kind == "baseline":
        return _baseline_row(data)
    stages = data.stages_of(strategies)
    if not stages:
        return None
    spent, to_reach = _stage_sum(data, stages), data.to_reach(stages)
    base = Row(kind, label, stages, compute=spent, to_reach=to_reach)
    if kind == "confirmed":
        return _confirmed_row(data, base)
    exclude = _baseline_params(data) if kind == "ofat" else None
    best = _best(data, stages, exclude)
    if best is None:
        return _pending(base, "no completed trial yet")
    return _trial_row(data, base, best)


def _stage_sum(data: _Sweep, stages: list[str]) -> Compute:
    return _sum(data.compute.get(stage, Compute()) for stage in stages)


def _pending(row: Row, note: str) -> Row:
    return replace(row, notes=[note])


def _best(data: _Sweep, stages: list[str], exclude: dict[str, Any] | None) -> FrozenTrial | None:
    """The best COMPLETE trial of `stages` (reused answers included); the earlier trial
    wins a tie, as everywhere else in sweepctl."""
    sign = -1.0 if data.maximize else 1.0
    candidates = [
        t
        for t in data.trials
        if t.user_attrs.get(STAGE_ATTR) in stages
        and t.state is TrialState.COMPLETE
        and t.value is not None
        and (exclude is None or t.params != exclude)
    ]
    return min(candidates, key=lambda t: (sign * float(t.value or 0.0), t.number), default=None)


def _trial_row(data: _Sweep, base: Row, trial: FrozenTrial) -> Row:
    """`trial` is an Optuna trial; its training is itself or the run it reused."""
    trained = int(trial.user_attrs.get(REUSED_ATTR, trial.number))
    summary = data.rows.get(trained)
    notes = list(base.notes)
    record = data.store.get_trial(summary.id) if summary is not None else None
    metrics = (record.metrics if record is not None else None) or {}
    if summary is not None and REUSED_ATTR in trial.user_attrs:
        notes.append(f"answered by trial #{summary.number} (stage {summary.stage}), not retrained")
    interval = metrics.get(OBJECTIVE_INTERVAL_KEY)
    return replace(
        base,
        params=dict(trial.params),
        objective=float(trial.value) if trial.value is not None else None,
        interval=interval,
        interval_kind="evaluation" if interval else None,
        degenerate=metrics.get(DEGENERATE_KEY),
        notes=notes,
        **_training(summary),
    )


def _training(summary: TrialSummary | None) -> dict[str, Any]:
    """The store row that trained a row's answer: its id, number and stage."""
    if summary is None:
        return {"trial_id": None, "trial_number": None, "trained_in": None}
    return {"trial_id": summary.id, "trial_number": summary.number, "trained_in": summary.stage}


def _baseline_params(data: _Sweep) -> dict[str, Any] | None:
    """The spec's own values as the sweep ran them: the first trial in the baseline role,
    else a confirmed configuration that is the baseline."""
    for trial in data.trials:
        raw = trial.user_attrs.get(CONFIG_ATTR)
        if raw and json.loads(raw)[0] == BASELINE_ROLE:
            return dict(trial.params)
    confirmed = confirmed_best(data.record.stages)
    if confirmed is not None:
        found = [r for r in confirmed.configurations if r.get("is_baseline")]
        return dict(found[0]["params"]) if found else None
    return None


def _baseline_row(data: _Sweep) -> Row:
    params = _baseline_params(data)
    row = Row("baseline", "baseline", [], params=params)
    if params is None:
        return _pending(row, "the sweep has not run the spec's own values yet")
    runs = [
        t
        for t in data.trials
        if t.params == params
        and int(t.user_attrs.get(REPEAT_ATTR) or 0) == 0
        and t.state is TrialState.COMPLETE
    ]
    if not runs:
        return _pending(row, "not trained yet")
    found = _trial_row(data, row, runs[0])
    own = data.rows.get(int(runs[0].user_attrs.get(REUSED_ATTR, runs[0].number)))
    compute = _compute([own]) if own is not None and own.started_at is not None else Compute()
    stages = [found.trained_in] if found.trained_in else []
    notes = [*found.notes, *_baseline_seeds(data)]
    return replace(found, stages=stages, compute=compute, to_reach=compute, notes=notes)


def _baseline_seeds(data: _Sweep) -> list[str]:
    """The confirm stage's seed mean of the baseline, next to its single run."""
    confirmed = confirmed_best(data.record.stages)
    if confirmed is None or not confirmed.baseline or int(confirmed.baseline.get("n") or 0) < 2:
        return []
    seeds = confirmed.baseline["n"]
    return [f"over {seeds} seeds (stage {confirmed.stage}): {mean_ci(confirmed.baseline)}"]


def _confirmed_row(data: _Sweep, base: Row) -> Row:
    confirmed = confirmed_best(data.record.stages)
    if confirmed is None:
        return _pending(base, "the confirm stage has not completed")
    winner = confirmed.winner
    summary = data.rows.get(confirmed.winner_trial())
    interval = winner.get("interval")
    return replace(
        base,
        params=dict(winner["params"]),
        objective=float(interval["estimate"]) if interval else None,
        interval=interval,
        interval_kind="seeds" if interval else None,
        notes=_confirm_notes(confirmed),
        **_training(summary),
    )


def _confirm_notes(confirmed: Confirmed) -> list[str]:
    notes = [f"pick: {confirmed.pick} over {confirmed.winner.get('n')} seeds"]
    if confirmed.ties:
        tied = "; ".join(compact_params(p) for p in confirmed.tied)
        notes.append(f"cannot be told apart from: {tied}")
    return notes


# --- what `sweepctl compare` prints ------------------------------------------------------


COMPUTE_CAPTION = (
    "spent: trainings / trial-epochs / wall s of the row's stages; to reach: the same over "
    "every stage up to the row's"
)


def comparison_table(comparison: Comparison) -> Table:
    """Notes (degenerate, reuse, ties, the baseline's seed mean) go under the table, so
    the rows stay one configuration high in a 120-column terminal."""
    notes = [f"{row.label}: {note}" for row in comparison.rows for note in _all_notes(row)]
    table = Table(
        title=f"Comparison, sweep {comparison.sweep}",
        title_justify="left",
        caption="\n".join([*notes, COMPUTE_CAPTION, f"sweep total: {comparison.total.text()}"]),
        caption_justify="left",
    )
    table.add_column("Row", no_wrap=True)
    table.add_column("Stage")
    table.add_column("Trial", justify="right")
    table.add_column("Params", no_wrap=True, overflow="fold")
    table.add_column(f"{comparison.metric} ({'max' if comparison.maximize else 'min'}imize)")
    table.add_column("Spent", justify="right", no_wrap=True)
    table.add_column("To reach", justify="right", no_wrap=True)
    for row in comparison.rows:
        table.add_row(
            row.label,
            ", ".join(row.stages) or "-",
            f"#{row.trial_number}" if row.trial_number is not None else "-",
            "\n".join(f"{k}={format_value(v)}" for k, v in (row.params or {}).items()) or "-",
            objective_cell(row),
            row.compute.cell(),
            row.to_reach.cell(),
        )
    return table


def objective_cell(row: Row) -> str:
    """objective_text on three short lines: value, interval, what the interval is over."""
    interval = row.interval
    if row.objective is None:
        return "-"
    if not interval:
        return f"{row.objective:.4f}\nno interval"
    confidence = round(100 * float(interval.get("confidence") or 0.95))
    low, high, n = interval["low"], interval["high"], interval["n"]
    if row.interval_kind == "seeds":
        half = (high - low) / 2.0
        return (
            f"{row.objective:.4f} ± {half:.4f}\n{confidence}% CI {low:.4f}..{high:.4f}\n{n} seeds"
        )
    return (
        f"{row.objective:.4f}\n{confidence}% {low:.4f}..{high:.4f}\n{interval['method']}, {n} rows"
    )


def objective_text(row: Row) -> str:
    """`0.8650 (95% 0.8277..0.8952, wilson, 400 rows)` for one run's evaluation interval,
    `0.8412 ± 0.0123 (95% CI 0.8289..0.8535, n=5)` for a seed interval."""
    if row.objective is None:
        return "-"
    interval = row.interval
    if not interval:
        return f"{row.objective:.4f} (no interval)"
    if row.interval_kind == "seeds":
        return mean_ci({"interval": interval})
    confidence = round(100 * float(interval.get("confidence") or 0.95))
    return (
        f"{row.objective:.4f} ({confidence}% {interval['low']:.4f}..{interval['high']:.4f}, "
        f"{interval['method']}, {interval['n']} rows)"
    )


def _all_notes(row: Row) -> list[str]:
    degenerate = [f"degenerate: {row.degenerate}"] if row.degenerate else []
    return [*degenerate, *row.notes]
