"""Server-rendered dashboard pages: sweeps, one sweep, one trial, launch.

Pages are Jinja2 templates with autoescaping on for every template (not only *.html),
so any name a user gave - sweep, stage, parameter, error text - renders as text. The
sweep page ships its first state in the HTML and then polls the JSON endpoints of
`service.dashboard_api`; its scripts build DOM with textContent only. Plotly is served
from the plotly package itself: the dashboard must work with no network.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import plotly
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from jinja2 import Environment, FileSystemLoader

from sweepctl.service import dashboard_data as data
from sweepctl.service.controller import SERVER
from sweepctl.service.dashboard_api import trial_or_404, trial_payload
from sweepctl.service.deps import settings_of, store_of, sweep_or_404
from sweepctl.service.formatting import FILTERS
from sweepctl.service.importance import optuna_study_id, prefetch
from sweepctl.service.overview import RESUMABLE, sweep_overview
from sweepctl.service.settings import ServeSettings
from sweepctl.storage import Store, redact_url

router = APIRouter(include_in_schema=False)
StoreDep = Annotated[Store, Depends(store_of)]
SettingsDep = Annotated[ServeSettings, Depends(settings_of)]
TEMPLATES_DIR = Path(__file__).parent / "templates"
PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
EXPORT_FORMATS = (
    ("yaml", "YAML spec"),
    ("json", "JSON"),
    ("hf-args", "HF args"),
    ("csv", "Trials CSV"),
)

_env = Environment(loader=FileSystemLoader(TEMPLATES_DIR), autoescape=True, auto_reload=False)
_env.filters.update(FILTERS)


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    settings: ServeSettings = request.app.state.settings
    page = _env.get_template(template).render(database=redact_url(settings.db_url), **context)
    return HTMLResponse(page, status_code=status_code)


@router.get("/assets/plotly.min.js")
def plotly_js() -> FileResponse:
    """The plotly package's own bundle; cached a day by the browser (4.8 MB)."""
    headers = {"Cache-Control": "public, max-age=86400"}
    return FileResponse(PLOTLY_JS, media_type="text/javascript", headers=headers)


@router.get("/", response_class=HTMLResponse)
def sweeps_page(request: Request, store: StoreDep) -> Response:
    sweeps = [sweep_overview(store, s) for s in store.sweep_rows()]  # no spec is read
    return render(request, "sweeps.html", sweeps=sweeps)


@router.get("/sweeps/{sweep_id}", response_class=HTMLResponse)
def sweep_page(request: Request, sweep_id: int, store: StoreDep, settings: SettingsDep) -> Response:
    try:
        sweep = sweep_or_404(store, sweep_id)
    except HTTPException:
        return _not_found(request, f"sweep {sweep_id}")
    overview = sweep_overview(store, sweep)
    prefetch(
        settings.db_url, sweep.name, data.finished_trials(sweep)
    )  # the importance chart asks next
    return render(
        request,
        "sweep.html",
        sweep=overview,
        parameters=data.searched_parameters(sweep.spec),
        formats=EXPORT_FORMATS,
        optuna_id=optuna_study_id(settings.db_url, sweep.name),
        resumable=sweep.controller == SERVER and sweep.state in RESUMABLE,
    )


@router.get("/trials/{trial_id}", response_class=HTMLResponse)
def trial_page(request: Request, trial_id: int, store: StoreDep) -> Response:
    try:
        trial = trial_or_404(store, trial_id)
    except HTTPException:
        return _not_found(request, f"trial {trial_id}")
    return render(request, "trial.html", trial=trial_payload(store, trial))


@router.get("/launch", response_class=HTMLResponse)
def launch_page(request: Request) -> Response:
    return render(request, "launch.html")


def _not_found(request: Request, what: str) -> HTMLResponse:
    return render(request, "not_found.html", status_code=404, what=what)
