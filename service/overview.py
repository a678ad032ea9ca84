"""A sweep as the API and the pages show it: state, stage progress, best trial, timing.

Built from the sweep's record and `Store.sweep_stats` (a few aggregate queries), never
from every trial row, so the sweeps list, the sweep page and each live poll cost the same
at 10 trials and at 10,000.
"""

from __future__ import annotations

from datetime import datetime, timezone
from functools import lru_cache
from typing import Any

from orchestrator.sweep_report import objective_of
from storage import Store, SweepRecord, SweepState, SweepStats, TrialState

FINISHED_SWEEP = frozenset({SweepState.COMPLETED, SweepState.FAILED, SweepState.CANCELLED})
DONE = (TrialState.COMPLETED, TrialState.PRUNED)


def sweep_overview(
    store: Store, sweep: SweepRecord, stats: SweepStats | None = None
) -> dict[str, Any]:
    stats = stats if stats is not None else store.sweep_stats(sweep.id)
    objective = objective_of(sweep.spec)
    best_id = best_trial_id(stats, objective.maximize)
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
        "objective": {"metric": objective.metric, "maximize": objective.maximize},
        "trial_counts": sweep.trial_counts,
        "running": stats.running,
        "best": best[0].to_dict() if best else None,
        "stages": _stages(sweep, stats),
    }


def best_trial_id(stats: SweepStats, maximize: bool) -> int | None:
    """Same rule as `sweepctl status`: best objective, the earlier trial wins a tie."""
    sign = -1.0 if maximize else 1.0
    best = min(stats.completed, key=lambda c: (sign * c[2], c[0]), default=None)
    return best[1] if best is not None else None


def _elapsed(sweep: SweepRecord, started: datetime | None) -> float | None:
    if started is None:
        return None
    end = sweep.updated_at if sweep.state in FINISHED_SWEEP else datetime.now(timezone.utc)
    return max(0.0, (end - started).total_seconds())


def _stages(sweep: SweepRecord, stats: SweepStats) -> list[dict[str, Any]]:
    planned = _planned(sweep)
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


def _planned(sweep: SweepRecord) -> dict[str, int | None]:
    summaries = {stage.name: stage.summary for stage in sweep.stages}
    try:
        return _planned_cached(sweep.id, _freeze(sweep.spec), _freeze(summaries))
    except Exception:  # a spec stored by another sweepctl version: progress without totals
        return {}


@lru_cache(maxsize=256)
def _planned_cached(sweep_id: int, spec: str, summaries: str) -> dict[str, int | None]:
    import json

    from orchestrator.plan_size import planned_trials
    from orchestrator.spec import SweepSpec

    return planned_trials(SweepSpec.model_validate(json.loads(spec)), json.loads(summaries))


def _freeze(value: Any) -> str:
    import json

    return json.dumps(value, sort_keys=True, default=str)
