"""A sweep as the API and the pages show it: state, stage progress, best trial, timing.

Built from one sweep read and one trial-summary read, so the sweeps list and the sweep
page stay cheap however many evaluations a sweep holds.
"""

from __future__ import annotations

from datetime import datetime, timezone
from functools import lru_cache
from typing import Any

from orchestrator.sweep_report import objective_of
from storage import SweepRecord, SweepState, TrialState, TrialSummary

FINISHED_SWEEP = frozenset({SweepState.COMPLETED, SweepState.FAILED, SweepState.CANCELLED})


def sweep_overview(sweep: SweepRecord, trials: list[TrialSummary]) -> dict[str, Any]:
    objective = objective_of(sweep.spec)
    best = best_trial(trials, objective.maximize)
    started = min((t.started_at for t in trials if t.started_at), default=None)
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
        "running": [t.number for t in trials if t.state is TrialState.RUNNING],
        "best": best.to_dict() if best else None,
        "stages": _stages(sweep, trials),
    }


def best_trial(trials: list[TrialSummary], maximize: bool) -> TrialSummary | None:
    """Same rule as `sweepctl status`: best objective, the earlier trial wins a tie."""
    done = [t for t in trials if t.state is TrialState.COMPLETED and t.objective is not None]
    sign = -1.0 if maximize else 1.0
    return min(done, key=lambda t: (sign * float(t.objective or 0.0), t.number), default=None)


def _elapsed(sweep: SweepRecord, started: datetime | None) -> float | None:
    if started is None:
        return None
    end = sweep.updated_at if sweep.state in FINISHED_SWEEP else datetime.now(timezone.utc)
    return max(0.0, (end - started).total_seconds())


def _stages(sweep: SweepRecord, trials: list[TrialSummary]) -> list[dict[str, Any]]:
    planned = _planned(sweep)
    rows = []
    for stage in sweep.stages:
        mine = [t for t in trials if t.stage == stage.name]
        done = [t for t in mine if t.state in (TrialState.COMPLETED, TrialState.PRUNED)]
        starts = [t.started_at for t in mine if t.started_at]
        ends = [t.finished_at for t in mine if t.finished_at]
        # answered from an earlier run of the same configuration (no training, no stored
        # trial); the stage summary counts them once the stage has finished
        reused = int((stage.summary or {}).get("reused") or 0)
        rows.append(
            {
                "name": stage.name,
                "strategy": stage.strategy,
                "state": stage.state.name,
                "planned": planned.get(stage.name),
                "done": len(done) + reused,
                "reused": reused,
                "trials": len(mine),
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
