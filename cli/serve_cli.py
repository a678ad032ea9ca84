"""`sweepctl serve`: the API, the dashboard and the sweep controller in one process."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.console import Console

from sweepctl.service.settings import MAX_BODY_BYTES, ServeSettings, is_loopback
from sweepctl.spec.errors import UsageError


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
    serve.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="NAME",
        help="also answer requests whose Host is NAME (repeatable); loopback names always are",
    )
    serve.add_argument(
        "--max-body-bytes",
        type=int,
        default=MAX_BODY_BYTES,
        help=f"largest request body accepted (default {MAX_BODY_BYTES})",
    )
    serve.add_argument(
        "--notify",
        action="append",
        default=[],
        metavar="URL",
        help="where a sweep whose spec sets no notify target reports its end: an http(s) "
        "webhook or an Apprise URL; ${VAR} is read from this server's environment (repeatable)",
    )
    return {"serve": cmd_serve}


def serve_settings(args: argparse.Namespace) -> ServeSettings:
    from sweepctl.service.token import server_token
    from sweepctl.storage import resolve_db_url, sweepctl_home

    if args.max_sweeps < 1:
        raise UsageError(f"--max-sweeps: expected 1 or more, got {args.max_sweeps}")
    if args.max_body_bytes < 1024:
        raise UsageError(f"--max-body-bytes: expected 1024 or more, got {args.max_body_bytes}")
    home = sweepctl_home()
    try:
        token = server_token(home)
    except OSError as exc:
        raise UsageError(f"cannot keep the server token in {home}: {exc}") from None
    return ServeSettings(
        db_url=resolve_db_url(args.db),
        home=str(home),
        host=args.host,
        port=args.port,
        token=token,
        allowed_hosts=tuple(h.strip().lower() for h in args.allowed_host if h.strip()),
        max_body_bytes=args.max_body_bytes,
        max_concurrent_sweeps=args.max_sweeps,
        ray_address=args.ray_address,
        backend=args.backend,
        runner=args.runner,
        notify=tuple(_notify_targets(args.notify)),
    )


def _notify_targets(urls: list[str]) -> list[str]:
    """`--notify` URLs as the spec's are checked: one line naming the bad one (exit 2)."""
    from pydantic import ValidationError

    from sweepctl.orchestrator.preflight import check_notify_targets
    from sweepctl.spec.overnight import NotifySpec, redact_url

    for url in urls:
        webhook = url.startswith(("http://", "https://")) or url.startswith("${")
        try:
            NotifySpec(webhook=url) if webhook else NotifySpec(apprise=[url])
            if not webhook:
                check_notify_targets([url], "--notify")
        except ValidationError as exc:
            message = exc.errors()[0]["msg"]
            raise UsageError(f"--notify {redact_url(url)}: {message}") from None
    return urls


def login_url(settings: ServeSettings) -> str:
    """What to open in a browser: any allowed name works, loopback is the safe default."""
    return f"{settings.dashboard_url}/?token={settings.token}"


def cmd_serve(args: argparse.Namespace, console: Console) -> int:
    import uvicorn

    from sweepctl.service.app import create_app
    from sweepctl.service.token import token_path
    from sweepctl.storage import Store, redact_url

    settings = serve_settings(args)
    Store(settings.db_url).close()  # a bad URL is exit 2 here, not a traceback in uvicorn
    app = create_app(settings)
    reads = "every request" if not is_loopback(settings.host) else "changes"
    console.print(
        f"sweepctl serve on {settings.host}:{settings.port} (database "
        f"{redact_url(settings.db_url)}, up to {settings.max_concurrent_sweeps} sweep(s) at "
        f"once; the token, kept in {token_path(Path(settings.home))}, is needed for {reads})",
        soft_wrap=True,
    )
    console.print(f"log in: {login_url(settings)}", soft_wrap=True, markup=False)
    if settings.notify:
        from sweepctl.spec.overnight import redact_url as redact_target

        shown = ", ".join(redact_target(url) for url in settings.notify)
        console.print(f"sweeps without notify targets report to: {shown}", markup=False)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning")
    return 0
