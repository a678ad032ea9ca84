"""What the dashboard's tables and charts show, computed in Python from store reads.

Kept apart from the routes so the rules (best so far, overfitting, the OFAT noise band,
searched-parameter axes) are plain functions the tests can call, and so nothing here
needs a request. Every function works on light rows (`TrialSummary`) or on the
evaluations of the few trials a user picked: never on a whole sweep's evaluations.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sweepctl.orchestrator.confirmed import confirmed_best
from sweepctl.storage import EvaluationRecord, SweepRecord, TrialState, TrialSummary
from sweepctl.workers.noise import DEGENERATE_KEY, OBJECTIVE_INTERVAL_KEY
from sweepctl.workers.predictions import PREDICTIONS_KEY

MAX_CURVES = 50  # learning curves drawn at once; more is unreadable and only costs reads
EPOCH_FIELDS = ("training_loss", "eval_loss", "accuracy", "f1", "precision", "recall")


def trial_row(trial: TrialSummary) -> dict[str, Any]:
    """One table row; the full error text stays on the trial page."""
    return {
        "id": trial.id,
        "number": trial.number,
        "stage": trial.stage,
        "state": trial.state.name,
        "params": trial.params,
        "objective": _finite(trial.objective),
        "epochs": trial.last_epoch,
        "evaluations": trial.evaluations,
        "duration_s": trial.duration_s,
        "started_at": trial.started_at.isoformat() if trial.started_at else None,
        "error": trial.error.splitlines()[0] if trial.error else None,
    }


def best_so_far(
    completed: Iterable[tuple[int, int, float]], maximize: bool
) -> list[dict[str, Any]]:
    """The best completed objective after each improvement, in trial-number order, plus
    the last completed trial: the step line users read to see whether a sweep still
    improves. `completed` is (number, trial id, objective) in number order. Only the
    steps are sent; 10,000 flat points would say nothing more."""
    best: float | None = None
    points: list[dict[str, Any]] = []
    last: dict[str, Any] | None = None
    for number, trial_id, objective in completed:
        value = _finite(objective)
        if value is None:
            continue
        last = {"number": number, "id": trial_id, "value": value, "best": best}
        if best is None or (value > best if maximize else value < best):
            best = value
            points.append(last)
        last["best"] = best
    if last is not None and (not points or points[-1] is not last):
        points.append(last)
    return points


# A row written by a worker on another machine carries that machine's clock; rows changed
# this long before the cursor are sent again, which merging makes harmless.
CURSOR_MARGIN = timedelta(seconds=30)


def parse_cursor(since: str | None) -> datetime | None:
    """The moment after which changes are wanted; None (a full answer) for no or a bad
    cursor, so a client can always recover by asking afresh."""
    if not since:
        return None
    try:
        moment = datetime.fromisoformat(since)
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    return moment - CURSOR_MARGIN


def searched_parameters(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """The search space as chart axes: log-scaled floats, int ranges, categorical choices."""
    axes = []
    for name, param in (spec.get("search_space") or {}).items():
        param = param or {}
        axes.append(
            {
                "name": name,
                "type": param.get("type", "float"),
                "log": bool(param.get("log", False)),
                "low": param.get("low"),
                "high": param.get("high"),
                "choices": param.get("choices"),
            }
        )
    return axes


def overfitting_epoch(evaluations: Sequence[EvaluationRecord]) -> float | None:
    """The first epoch at which validation loss rose while training loss fell (both
    compared with the previous evaluation); None when that never happens or either loss is
    missing (replayed curves carry no training loss)."""
    previous: EvaluationRecord | None = None
    for row in evaluations:
        if previous is not None and _both_losses(previous) and _both_losses(row):
            val_up = float(row.eval_loss) > float(previous.eval_loss)  # type: ignore[arg-type]
            train_down = float(row.training_loss) < float(previous.training_loss)  # type: ignore[arg-type]
            if val_up and train_down:
                return row.epoch
        previous = row
    return None


def curve(trial: TrialSummary, evaluations: Sequence[EvaluationRecord]) -> dict[str, Any]:
    return {
        "id": trial.id,
        "number": trial.number,
        "stage": trial.stage,
        "state": trial.state.name,
        "epochs": [row.epoch for row in evaluations],
        "training_loss": [_finite(row.training_loss) for row in evaluations],
        "eval_loss": [_finite(row.eval_loss) for row in evaluations],
        "overfitting_from_epoch": overfitting_epoch(evaluations),
    }


def noise_fields(metrics: dict[str, Any] | None) -> dict[str, Any]:
    """The trial detail's evaluation noise, at top level so a reader need not know where
    the worker stored it; the metrics lose the raw predictions, which only the confirm
    stage re-scores and which would fill the page's metrics table with base64."""
    if metrics is None:
        return {"metrics": None, "objective_interval": None, "degenerate": None}
    return {
        "metrics": {k: v for k, v in metrics.items() if k != PREDICTIONS_KEY},
        "objective_interval": metrics.get(OBJECTIVE_INTERVAL_KEY),
        "degenerate": metrics.get(DEGENERATE_KEY),
    }


def epoch_rows(evaluations: Sequence[EvaluationRecord]) -> list[dict[str, Any]]:
    """The per-epoch table of the trial page, with the overfitting epoch marked."""
    flagged = overfitting_epoch(evaluations)
    rows = []
    for row in evaluations:
        values = {name: _finite(getattr(row, name)) for name in EPOCH_FIELDS}
        rows.append({"epoch": row.epoch, "step": row.step, **values, "flag": row.epoch == flagged})
    return rows


def ofat_charts(sweep: SweepRecord) -> list[dict[str, Any]]:
    """Every OFAT stage's ranking as bars (mean ± std per moved value) and its noise band:
    baseline mean ± baseline std, the spread that repeating the baseline seed gives."""
    charts = []
    for stage in sweep.stages:
        ofat = (stage.summary or {}).get("ofat")
        if not ofat:
            continue
        baseline = ofat.get("baseline") or {}
        mean, std = baseline.get("mean"), baseline.get("std")
        band = None
        if mean is not None:
            spread = std or 0.0
            band = {"low": mean - spread, "high": mean + spread}
        charts.append(
            {
                "stage": stage.name,
                "baseline": baseline,
                "band": band,
                "parameters": [_ofat_bar(p) for p in ofat.get("ranking") or []],
            }
        )
    return charts


def _ofat_bar(parameter: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": parameter.get("name"),
        "impact": parameter.get("impact"),
        "best_value": parameter.get("best_value"),
        "noise": bool(parameter.get("noise")),
        "effects": [
            {
                "value": effect.get("value"),
                "mean": effect.get("mean"),
                "std": effect.get("std"),
                "delta": effect.get("delta"),
                "n": effect.get("n"),
            }
            for effect in parameter.get("effects") or []
        ],
    }


def confirm_charts(sweep: SweepRecord) -> list[dict[str, Any]]:
    """One entry per completed confirm stage: its configurations best first, each with
    its interval (estimate, low, high, n, std), verdict and paired test vs the winner."""
    charts = []
    for stage in sweep.stages:
        found = confirmed_best([stage])
        if found is not None:
            charts.append(found.to_dict())
    return charts


def finished_trials(sweep: SweepRecord) -> int:
    """The importance cache key: the answer can only change when another trial finishes."""
    return sum(sweep.trial_counts.get(state.name, 0) for state in TrialState if state.is_finished)


def _both_losses(row: EvaluationRecord) -> bool:
    return _finite(row.eval_loss) is not None and _finite(row.training_loss) is not None


def _finite(value: float | None) -> float | None:
    """NaN and infinities are not JSON; a missing number is shown as missing."""
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None
