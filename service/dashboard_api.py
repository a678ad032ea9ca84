"""Data endpoints behind the dashboard's tables and charts (/api/v1, JSON).

The sweep page polls `/sweeps/{id}/trials` every two seconds, so that endpoint is one
sweep read plus one trial-summary read (no evaluations) whatever the sweep's size; the
other endpoints read evaluations only for the trials a user picked, or nothing from the
sweepctl tables at all (importance, cached per finished-trial count).
`Store.list_trials`, which loads every evaluation, is never used here.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import JSONResponse

from sweepctl.orchestrator.comparison import compare_sweep
from sweepctl.orchestrator.sweep_report import objective_of
from sweepctl.service import dashboard_data as data
from sweepctl.service.deps import settings_of, store_of, sweep_or_404
from sweepctl.service.importance import optuna_study_id, param_importance
from sweepctl.service.overview import sweep_overview
from sweepctl.service.settings import ServeSettings
from sweepctl.storage import Store, StoreError, TrialRecord

router = APIRouter(prefix="/api/v1", tags=["dashboard"])
StoreDep = Annotated[Store, Depends(store_of)]
SettingsDep = Annotated[ServeSettings, Depends(settings_of)]


@router.get("/sweeps/{sweep_id}/trials")
def sweep_trials(
    sweep_id: int,
    store: StoreDep,
    since: Annotated[
        str | None, Query(description="the `cursor` of the previous answer: changed rows only")
    ] = None,
) -> JSONResponse:
    """Everything the live part of the sweep page redraws: overview (stages, counts,
    best), the trial table, the searched-parameter axes and the best-so-far line.

    With `since`, only rows that changed after it (less a margin for clocks of other
    machines) are sent; the page merges them. At 10,000 trials that is a few KiB per poll
    instead of 3.6 MB. Returned as a ready JSONResponse: FastAPI's jsonable_encoder walks
    every value and took 0.6 s at 10,000 trials; these values are JSON-ready already."""
    cursor = datetime.now(timezone.utc)
    sweep = sweep_or_404(store, sweep_id)
    stats = store.sweep_stats(sweep_id)
    maximize = objective_of(sweep.spec).maximize
    after = data.parse_cursor(since)
    rows = store.trial_summaries(sweep_id, changed_after=after)
    return JSONResponse(
        {
            "sweep": sweep_overview(store, sweep, stats),
            "parameters": data.searched_parameters(sweep.spec),
            "full": after is None,
            "cursor": cursor.isoformat(),
            "trials": [data.trial_row(t) for t in rows],
            "best_so_far": data.best_so_far(stats.completed, maximize),
        }
    )


@router.get("/sweeps/{sweep_id}/curves")
def sweep_curves(
    sweep_id: int,
    store: StoreDep,
    trials: Annotated[str, Query(description="comma-separated trial ids of this sweep")] = "",
) -> dict[str, Any]:
    """Training and validation loss per epoch of the asked trials only, each with the
    epoch overfitting starts at (validation loss up while training loss goes down)."""
    sweep_or_404(store, sweep_id)
    wanted = _ids(trials)
    mine = {t.id: t for t in store.trial_summaries(sweep_id, trial_ids=wanted)} if wanted else {}
    chosen = [mine[i] for i in wanted if i in mine]
    evaluations = store.evaluations_of([t.id for t in chosen])
    return {"curves": [data.curve(t, evaluations.get(t.id, [])) for t in chosen]}


@router.get("/sweeps/{sweep_id}/ofat")
def sweep_ofat(sweep_id: int, store: StoreDep) -> dict[str, Any]:
    """The OFAT ranking of every screening stage, as stored when the stage completed."""
    sweep = sweep_or_404(store, sweep_id)
    return {"metric": objective_of(sweep.spec).metric, "stages": data.ofat_charts(sweep)}


@router.get("/sweeps/{sweep_id}/confirm")
def sweep_confirm(sweep_id: int, store: StoreDep) -> dict[str, Any]:
    """Every confirm stage's configurations with mean ± 95% CI over their seeds, the
    paired tests against the winner and the ties, as stored when the stage completed."""
    sweep = sweep_or_404(store, sweep_id)
    return {"metric": objective_of(sweep.spec).metric, "stages": data.confirm_charts(sweep)}


@router.get("/sweeps/{sweep_id}/compare")
def sweep_compare(sweep_id: int, store: StoreDep, settings: SettingsDep) -> dict[str, Any]:
    """What `sweepctl compare` prints: baseline, best OFAT move, best grid point, best
    Bayesian trial and confirmed winner, each with its interval and compute. Reads the
    Optuna study, so the sweep page asks for it when a stage changes, not on every poll."""
    sweep = sweep_or_404(store, sweep_id)
    return compare_sweep(store, sweep, settings.db_url).to_dict()


@router.get("/sweeps/{sweep_id}/importance")
def sweep_importance(sweep_id: int, store: StoreDep, settings: SettingsDep) -> dict[str, Any]:
    """Optuna's PED-ANOVA importance on the sweep's study; recomputed only when another
    trial has finished since the last answer."""
    sweep = sweep_or_404(store, sweep_id)
    result = param_importance(settings.db_url, sweep.name, data.finished_trials(sweep))
    return {**result, "optuna_study_id": optuna_study_id(settings.db_url, sweep.name)}


@router.get("/trials/{trial_id}")
def trial_detail(trial_id: int, store: StoreDep) -> dict[str, Any]:
    """One trial with its evaluations, metrics, resources, artifacts and error, and its
    objective's evaluation interval and degenerate reason (null when it has none)."""
    trial = trial_or_404(store, trial_id)
    return trial_payload(store, trial)


def trial_or_404(store: Store, trial_id: int) -> TrialRecord:
    try:
        return store.get_trial(trial_id)
    except StoreError as exc:
        raise HTTPException(status_code=404, detail=f"trial {trial_id} not found") from exc


def trial_payload(store: Store, trial: TrialRecord) -> dict[str, Any]:
    payload = trial.to_dict()
    payload |= data.noise_fields(trial.metrics)
    payload["sweep_id"] = _sweep_id(store, trial.sweep_name)
    payload["epochs"] = data.epoch_rows(trial.evaluations)
    payload["overfitting_from_epoch"] = data.overfitting_epoch(trial.evaluations)
    payload["wandb_run"] = next((a.uri for a in trial.artifacts if a.kind == "wandb_run"), None)
    return payload


def _sweep_id(store: Store, name: str) -> int | None:
    try:
        return store.get_sweep(name).id
    except StoreError:
        return None


def _ids(raw: str) -> list[int]:
    """Distinct ids in the order given, at most MAX_CURVES; anything else is a 422."""
    ids: list[int] = []
    for part in raw.split(","):
        part = part.strip()
        if not part:
            continue
        if not part.isdigit():
            raise HTTPException(422, detail=f"trials: expected comma-separated ids, got {part!r}")
        if int(part) not in ids:
            ids.append(int(part))
    if len(ids) > data.MAX_CURVES:
        raise HTTPException(422, detail=f"trials: at most {data.MAX_CURVES} at once")
    return ids
