"""The ASGI app behind `sweepctl serve`: sweepctl's REST API under /api/v1, the dashboard
pages, their assets, and optuna-dashboard for the same database.

optuna-dashboard is mounted at the root as the fallback for every path sweepctl does not
serve itself, because its single-page app requests absolute paths (/dashboard,
/static/bundle.js, /api/studies...) and cannot live under a prefix. sweepctl's own routes
therefore avoid those prefixes: its API is /api/v1, its assets /assets.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from a2wsgi import WSGIMiddleware
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from sweepctl.service import api, dashboard_api, importance, pages
from sweepctl.service.auth import TokenGuard, TokenRules
from sweepctl.service.controller import SweepController
from sweepctl.service.hosts import HostGuard
from sweepctl.service.limits import BodyLimit
from sweepctl.service.settings import ServeSettings
from sweepctl.storage import Store

ASSETS_DIR = Path(__file__).parent / "assets"
log = logging.getLogger("sweepctl.serve")


def create_app(settings: ServeSettings) -> FastAPI:
    store = Store(settings.db_url)
    controller = SweepController(settings, store) if settings.run_controller else None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Validating a spec imports transformers' TrainingArguments (seconds): pay it before
        # the first request, not inside the first page view or submission.
        from sweepctl.spec.models import warm_up

        warm_up()

        if controller is not None:
            controller.start()
        try:
            yield
        finally:
            # every process this server started ends with it (SIGTERM and SIGINT both land
            # here through uvicorn): the importance worker, and Ray when the controller
            # started it
            importance.shutdown()
            if controller is not None:
                controller.stop()
            store.close()

    app = FastAPI(
        title="sweepctl",
        summary="Hyperparameter sweeps for transformer classifiers: API and dashboard",
        version="0.1.0",
        lifespan=lifespan,
        docs_url="/api/v1/docs",
        redoc_url=None,
        openapi_url="/api/v1/openapi.json",
    )
    app.state.settings = settings
    app.state.store = store
    app.state.controller = controller
    app.add_exception_handler(ValueError, _bad_request)
    app.include_router(api.router)
    app.include_router(dashboard_api.router)
    app.include_router(pages.router)
    app.mount("/assets", StaticFiles(directory=ASSETS_DIR), name="assets")
    # a2wsgi types its ASGI __call__ with its own TypedDict scopes and events; Starlette's
    # ASGIApp takes MutableMapping ones. The same ASGI protocol at runtime.
    app.mount("/", _optuna_dashboard(settings.db_url), name="optuna")  # type: ignore[arg-type]
    _add_doors(app, settings)
    return app


def _add_doors(app: FastAPI, settings: ServeSettings) -> None:
    """Outermost first: Host (DNS rebinding), then token and Origin, then the body limit;
    Starlette wraps the last one added around the others."""
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    rules = TokenRules(settings.token, settings.reads_need_token, settings.cookie_name)
    app.add_middleware(TokenGuard, rules=rules)
    app.add_middleware(HostGuard, allowed=settings.host_names)


def _optuna_dashboard(db_url: str) -> WSGIMiddleware:
    """Given a storage of ours: optuna-dashboard's own opens the URL without creating
    Optuna's tables, which a fresh sweepctl database does not have yet."""
    import optuna
    import optuna_dashboard

    storage = optuna.storages.RDBStorage(db_url)
    return WSGIMiddleware(optuna_dashboard.wsgi(storage))


async def _bad_request(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc).splitlines()[0]}, status_code=422)
