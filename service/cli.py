"""`sweepctl serve`: the API, the dashboard and the sweep controller in one process."""

from __future__ import annotations

import argparse
import os
from typing import Any

from rich.console import Console

from orchestrator.errors import UsageError
from service.settings import TOKEN_ENV, ServeSettings, is_loopback


def register(commands: Any) -> dict[str, Any]:
    serve = commands.add_parser("serve", help="run the API, dashboard and sweep controller")
    serve.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--db", help="SQLAlchemy URL or SQLite path")
    serve.add_argument("--ray-address", help="run trials on this Ray cluster")
    serve.add_argument(
        "--max-sweeps", type=int, default=1, help="sweeps run at once; later ones wait queued"
    )
    serve.add_argument("--backend", choices=["ray", "inline"], default="ray")
    serve.add_argument(
        "--runner", default="transformer", help="transformer; replay:FILE and noop for tests"
    )
    return {"serve": cmd_serve}


def serve_settings(args: argparse.Namespace) -> ServeSettings:
    from storage import resolve_db_url, sweepctl_home

    token = os.environ.get(TOKEN_ENV) or None
    if not is_loopback(args.host) and token is None:
        raise UsageError(
            f"--host {args.host}: binding beyond loopback needs {TOKEN_ENV} set "
            "(every launch and cancel must then carry it as a bearer token)"
        )
    if args.max_sweeps < 1:
        raise UsageError(f"--max-sweeps: expected 1 or more, got {args.max_sweeps}")
    return ServeSettings(
        db_url=resolve_db_url(args.db),
        home=str(sweepctl_home()),
        host=args.host,
        port=args.port,
        token=token,
        max_concurrent_sweeps=args.max_sweeps,
        ray_address=args.ray_address,
        backend=args.backend,
        runner=args.runner,
    )


def cmd_serve(args: argparse.Namespace, console: Console) -> int:
    import uvicorn

    from service.app import create_app
    from storage import Store, redact_url

    settings = serve_settings(args)
    Store(settings.db_url).close()  # a bad URL is exit 2 here, not a traceback in uvicorn
    app = create_app(settings)
    console.print(
        f"sweepctl serve: http://{settings.host}:{settings.port}/  "
        f"(database {redact_url(settings.db_url)}, up to {settings.max_concurrent_sweeps} "
        f"sweep(s) at once{', token required for changes' if settings.token_required else ''})"
    )
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning")
    return 0
