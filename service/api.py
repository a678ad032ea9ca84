"""sweepctl's REST API (/api/v1): submit, list, inspect, cancel and export sweeps.

Submissions are validated with the CLI's own checks and messages before anything is
written; a valid one becomes a PENDING sweep owned by the server's controller. Sweeps are
addressed by id: any name is allowed in the store, and ids are always safe in a path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import PlainTextResponse, Response
from pydantic import BaseModel, model_validator

from sweepctl.service.controller import SERVER
from sweepctl.service.deps import settings_of, store_of, sweep_or_404
from sweepctl.service.overview import RESUMABLE, sweep_overview
from sweepctl.service.settings import ServeSettings
from sweepctl.spec.errors import UsageError
from sweepctl.storage import Store, StoreError, SweepExistsError, SweepState, TrialState, redact_url

router = APIRouter(prefix="/api/v1", tags=["sweeps"])
StoreDep = Annotated[Store, Depends(store_of)]
SettingsDep = Annotated[ServeSettings, Depends(settings_of)]
DownloadFormat = Literal["yaml", "json", "hf-args", "csv"]
MEDIA = {"yaml": "application/yaml", "json": "application/json", "hf-args": "application/json"}


class Submission(BaseModel):
    """A spec as a mapping (what `sweepctl launch --server` sends, data paths already
    absolute) or as YAML text (pasted or uploaded in the dashboard)."""

    spec: dict[str, Any] | None = None
    yaml: str | None = None
    source: str = "submitted spec"

    @model_validator(mode="after")
    def _one_of(self) -> Submission:
        if (self.spec is None) == (self.yaml is None):
            raise ValueError("send exactly one of 'spec' (a mapping) or 'yaml' (text)")
        return self


@router.get("/health")
def health(settings: SettingsDep, request: Request) -> dict[str, Any]:
    controller = request.app.state.controller
    return {
        "status": "ok",
        "database": redact_url(settings.db_url),
        "controller": controller is not None,
        "running_sweeps": controller.running if controller is not None else [],
        "max_concurrent_sweeps": settings.max_concurrent_sweeps,
    }


@router.get("/sweeps")
def list_sweeps(store: StoreDep) -> list[dict[str, Any]]:
    return [sweep_overview(store, s) for s in store.sweep_rows()]  # specs stay unread


@router.post("/sweeps", status_code=201)
def submit_sweep(submission: Submission, store: StoreDep, settings: SettingsDep) -> dict[str, Any]:
    spec = validate_submission(submission, settings.runner)
    return create_queued_sweep(store, spec)


def validate_submission(submission: Submission, runner: str) -> Any:
    """The spec, or HTTP 422 with the CLI's message (one line per error, unknown keys
    first) as `detail`; nothing is written."""
    from sweepctl.orchestrator.preflight import check_launchable
    from sweepctl.spec.models import parse_spec, parse_spec_text

    base_dir = Path.cwd()  # relative data paths in pasted YAML: the server's directory
    try:
        if submission.yaml is not None:
            spec = parse_spec_text(submission.yaml, submission.source, base_dir)
        else:
            spec = parse_spec(submission.spec, submission.source, base_dir)
        check_launchable(spec, submission.source, runner)
    except UsageError as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from None
    return spec


def create_queued_sweep(store: Store, spec: Any) -> dict[str, Any]:
    from sweepctl.spec.models import spec_to_dict

    stages = [(s.name, s.strategy) for s in spec.stages]
    try:
        sweep_id = store.create_sweep(spec.name, spec_to_dict(spec), stages, controller=SERVER)
    except SweepExistsError as exc:
        raise HTTPException(status_code=409, detail=f"sweep {spec.name!r} already exists") from exc
    return {"id": sweep_id, "name": spec.name, "state": "PENDING", "url": f"/sweeps/{sweep_id}"}


@router.get("/sweeps/{sweep_id}")
def get_sweep(sweep_id: int, store: StoreDep) -> dict[str, Any]:
    sweep = sweep_or_404(store, sweep_id)
    return {**sweep_overview(store, sweep), "spec": sweep.spec}


@router.post("/sweeps/{sweep_id}/cancel")
def cancel_sweep(sweep_id: int, store: StoreDep) -> dict[str, Any]:
    """What `sweepctl cancel` does: the orchestrator sees the state and stops its trials."""
    from sweepctl.orchestrator.reasons import CANCEL_REASON

    sweep = sweep_or_404(store, sweep_id)
    if sweep.state not in (SweepState.PENDING, SweepState.RUNNING):
        raise HTTPException(409, detail=f"sweep {sweep.name!r} is {sweep.state.name}")
    try:
        store.set_sweep_state(sweep.name, SweepState.CANCELLED)
    except ValueError as exc:  # it finished in between
        raise HTTPException(409, detail=str(exc)) from None
    stopped = store.fail_running_trials(sweep.name, CANCEL_REASON, state=TrialState.CANCELLED)
    return {"id": sweep_id, "state": "CANCELLED", "stopped_trials": len(stopped)}


class ResumeRequest(BaseModel):
    """`budget`: limits to change first, as `sweepctl resume --budget` does (null removes
    one), e.g. {"max_wall_time": "12h"} for a sweep STOPPED at its wall-time budget."""

    budget: dict[str, Any] = {}


@router.post("/sweeps/{sweep_id}/resume")
def resume_sweep(
    sweep_id: int, store: StoreDep, body: ResumeRequest | None = None
) -> dict[str, Any]:
    """Back to RUNNING; the controller resumes it as `sweepctl resume` would: completed
    trials kept, interrupted ones retried. A terminal's sweep is resumed from a terminal."""
    from sweepctl.orchestrator.budget import raised_budget

    sweep = sweep_or_404(store, sweep_id)
    if sweep.controller != SERVER:
        raise HTTPException(
            409, detail=f"sweep {sweep.name!r} runs from a terminal: use 'sweepctl resume'"
        )
    if sweep.state not in RESUMABLE:
        raise HTTPException(409, detail=f"sweep {sweep.name!r} is {sweep.state.name}")
    if body is not None and body.budget:
        try:
            budget = raised_budget(sweep.spec.get("budget") or {}, body.budget)
        except UsageError as exc:
            raise HTTPException(422, detail=str(exc)) from None
        store.set_sweep_budget(sweep.name, budget)
    try:
        store.set_sweep_state(sweep.name, SweepState.RUNNING)
    except ValueError as exc:
        raise HTTPException(409, detail=str(exc)) from None
    return {"id": sweep_id, "state": "RUNNING"}


@router.get("/sweeps/{sweep_id}/export")
def export_sweep(
    sweep_id: int,
    store: StoreDep,
    format: DownloadFormat = "yaml",
    top: Annotated[int, Query(ge=1, le=100)] = 1,
) -> Response:
    """The best configuration as `sweepctl export` writes it, as a file download."""
    from sweepctl.orchestrator.export import export_payload, trials_csv

    sweep = sweep_or_404(store, sweep_id)
    try:
        if format == "csv":
            body, media, suffix = trials_csv(store, sweep.name)[0], "text/csv", "trials.csv"
        else:
            body = export_payload(store, sweep.name, format, top=top)
            media, suffix = MEDIA[format], "best.yaml" if format == "yaml" else f"{format}.json"
    except (UsageError, StoreError) as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from None
    filename = _safe_filename(f"{sweep.name}-{suffix}")
    headers = {"Content-Disposition": f'attachment; filename="{filename}"'}
    return PlainTextResponse(body, media_type=media, headers=headers)


def _safe_filename(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "export"
