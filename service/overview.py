"""A sweep as the API and the pages show it: state, stage progress, best trial, timing.

Built from the sweep's record and `Store.sweep_stats` (a few aggregate queries), never
from every trial row, so the sweeps list, the sweep page and each live poll cost the same
at 10 trials and at 10,000.

The list is built from `Store.sweep_rows`, which leaves the spec column unread: what the
overview needs from a spec (objective, planned trials per stage) is kept per sweep and
stage summaries, so a spec is read once, not on every page view (a stored 50 MB spec once
made `/` take 4 s).
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from datetime import datetime, timezone
from typing import Any

from sweepctl.orchestrator.confirmed import confirmed_best
from sweepctl.orchestrator.diagnosis import sweep_warnings
from sweepctl.orchestrator.sweep_report import objective_of
from sweepctl.storage import Store, SweepRecord, SweepState, SweepStats, TrialState
from sweepctl.storage.views import SweepRow

AnySweep = SweepRecord | SweepRow
_FACTS_SIZE = 512
_facts: OrderedDict[tuple[Any, ...], tuple[dict[str, Any], dict[str, int | None]]] = OrderedDict()
_facts_lock = threading.Lock()
_warnings: OrderedDict[tuple[Any, ...], list[str]] = OrderedDict()

FINISHED_SWEEP = frozenset(
    {SweepState.COMPLETED, SweepState.FAILED, SweepState.CANCELLED, SweepState.STOPPED}
)
DONE = (TrialState.COMPLETED, TrialState.PRUNED)
# what `resume` continues: a failed or cancelled sweep, or one STOPPED at its budget
RESUMABLE = frozenset({SweepState.FAILED, SweepState.CANCELLED, SweepState.STOPPED})


def sweep_overview(
    store: Store, sweep: AnySweep, stats: SweepStats | None = None
) -> dict[str, Any]:
    stats = stats if stats is not None else store.sweep_stats(sweep.id)
    objective, planned = spec_facts(store, sweep)
    confirmed = confirmed_best(sweep.stages)
    best_id = best_trial_id(stats, objective["maximize"])
    if confirmed is not None:  # the sweep's best is the confirm stage's pick
        winner = store.trial_by_optuna_number(sweep.name, confirmed.winner_trial())
        best_id = winner.id if winner is not None else best_id
    best = store.trial_summaries(sweep.id, trial_ids=[best_id]) if best_id is not None else []
    started = stats.started_at
    return {
        "id": sweep.id,
        "name": sweep.name,
        "state": sweep.state.name,
        "controller": sweep.controller,
        "error": sweep.error,
        "created_at": sweep.created_at.isoformat(),
        "updated_at": sweep.updated_at.isoformat(),
        "started_at": started.isoformat() if started else None,
        "elapsed_s": _elapsed(sweep, started),
        "objective": objective,
        "trial_counts": sweep.trial_counts,
        "running": stats.running,
        "best": best[0].to_dict() if best else None,
        # mean ± 95% CI per confirmed configuration, the paired tests and the ties
        "confirmed": confirmed.to_dict() if confirmed is not None else None,
        "stages": _stages(sweep, stats, planned),
        # what not to trust in this sweep (orchestrator.diagnosis): always a list
        "warnings": cached_warnings(store, sweep, objective),
        # used, limit and left per budget key (orchestrator.budget); None without limits
        # or in the sweeps list, which never reads a spec
        "budget": _budget(store, sweep),
    }


def _budget(store: Store, sweep: AnySweep) -> dict[str, Any] | None:
    from sweepctl.orchestrator.budget import BudgetUsage, budget_lines, budget_report
    from sweepctl.spec.overnight import BudgetSpec

    if not isinstance(sweep, SweepRecord):
        return None
    budget = BudgetSpec.model_validate(sweep.spec.get("budget") or {})
    if not budget.limited:
        return None
    report = budget_report(budget, BudgetUsage.of(store, sweep.name, record=sweep))
    return {**report, "lines": budget_lines(report)}


def cached_warnings(store: Store, sweep: AnySweep, objective: dict[str, Any]) -> list[str]:
    """`sweep_warnings`, read again only when a trial or a stage summary has changed: the
    sweeps list builds an overview of every sweep on each view, and a finished sweep's
    warnings never change. A trial's result is written with its state, so the per-state
    counts and the summaries in the key see every change the warnings depend on."""
    summaries = {stage.name: stage.summary for stage in sweep.stages}
    key = (store.url, sweep.id, sweep.created_at, _freeze(sweep.trial_counts), _freeze(summaries))
    with _facts_lock:
        if key in _warnings:
            _warnings.move_to_end(key)
            return list(_warnings[key])
    found = sweep_warnings(store, sweep, objective["metric"], objective["maximize"])
    with _facts_lock:
        _warnings[key] = found
        while len(_warnings) > _FACTS_SIZE:
            _warnings.popitem(last=False)
    return list(found)


def best_trial_id(stats: SweepStats, maximize: bool) -> int | None:
    """Same rule as `sweepctl status`: best objective, the earlier trial wins a tie."""
    sign = -1.0 if maximize else 1.0
    best = min(stats.completed, key=lambda c: (sign * c[2], c[0]), default=None)
    return best[1] if best is not None else None


def _elapsed(sweep: AnySweep, started: datetime | None) -> float | None:
    if started is None:
        return None
    end = sweep.updated_at if sweep.state in FINISHED_SWEEP else datetime.now(timezone.utc)
    return max(0.0, (end - started).total_seconds())


def _stages(
    sweep: AnySweep, stats: SweepStats, planned: dict[str, int | None]
) -> list[dict[str, Any]]:
    rows = []
    for stage in sweep.stages:
        mine = [c for c in stats.by_stage if c.stage == stage.name]
        starts = [c.first_started for c in mine if c.first_started]
        ends = [c.last_finished for c in mine if c.last_finished]
        # answered from an earlier run of the same configuration (no training, no stored
        # trial); the stage summary counts them once the stage has finished
        reused = int((stage.summary or {}).get("reused") or 0)
        rows.append(
            {
                "name": stage.name,
                "strategy": stage.strategy,
                "state": stage.state.name,
                "planned": planned.get(stage.name),
                "done": sum(c.trials for c in mine if c.state in DONE) + reused,
                "reused": reused,
                "trials": sum(c.trials for c in mine),
                "started_at": min(starts).isoformat() if starts else None,
                "finished_at": max(ends).isoformat() if ends else None,
                "summary": stage.summary,
            }
        )
    return rows


def spec_facts(store: Store, sweep: AnySweep) -> tuple[dict[str, Any], dict[str, int | None]]:
    """(objective, planned trials per stage). A spec only changes when a sweep made of
    single `sweepctl trial` runs gets its stages, and planned totals only when a stage
    summary changes: both are in the key, so a cached answer is never stale."""
    summaries = {stage.name: stage.summary for stage in sweep.stages}
    key = (store.url, sweep.id, sweep.created_at, _freeze(summaries))
    with _facts_lock:
        if key in _facts:
            _facts.move_to_end(key)
            return _facts[key]
    spec = sweep.spec if isinstance(sweep, SweepRecord) else store.sweep_spec(sweep.name)
    objective = objective_of(spec)
    metric = {"metric": objective.metric, "maximize": objective.maximize}
    facts = (metric, _planned(spec, summaries))
    with _facts_lock:
        _facts[key] = facts
        while len(_facts) > _FACTS_SIZE:
            _facts.popitem(last=False)
    return facts


def _planned(spec: dict[str, Any], summaries: dict[str, Any]) -> dict[str, int | None]:
    from sweepctl.orchestrator.plan_size import planned_trials
    from sweepctl.spec.models import SweepSpec

    try:
        return planned_trials(SweepSpec.model_validate(spec), summaries)
    except Exception:  # a spec stored by another sweepctl version: progress without totals
        return {}


def _freeze(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)
