"""Sweep commands of the CLI: launch, resume, cancel, list, status, watch, export.

They share the store (`--db`) with `trial` and `show`, so a sweep launched in one terminal
can be watched, cancelled or exported from another.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live

from sweepctl.orchestrator.preflight import check_launchable

RUNNER_HELP = "transformer (default); replay:FILE and noop exist for benchmarks and tests"


def register(commands: Any) -> dict[str, Any]:
    launch = commands.add_parser("launch", help="run a staged sweep")
    launch.add_argument("spec")
    launch.add_argument(
        "--server",
        metavar="URL",
        help="submit to a running `sweepctl serve` (e.g. http://127.0.0.1:8000) and return",
    )
    launch.add_argument(
        "--if-exists",
        choices=["error", "resume"],
        default="error",
        help="what to do when a sweep of this name is already in the store",
    )
    resume = commands.add_parser("resume", help="continue an interrupted or stopped sweep")
    resume.add_argument("name")
    resume.add_argument(
        "--budget",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="raise or set a budget limit first, e.g. max_wall_time=12h (repeatable; "
        "KEY=none removes the limit)",
    )
    for parser in (launch, resume):
        parser.add_argument("--db", help="SQLAlchemy URL or SQLite path")
        parser.add_argument("--ray-address", help="join this Ray cluster instead of a local one")
        parser.add_argument(
            "--backend",
            choices=["ray", "inline"],
            default="ray",
            help="inline runs trials one by one in this process (debugging)",
        )
        parser.add_argument("--runner", default="transformer", help=RUNNER_HELP)
    cancel = commands.add_parser("cancel", help="stop a running sweep and mark its trials")
    cancel.add_argument("name")
    listing = commands.add_parser("list", help="all sweeps in the store")
    status = commands.add_parser("status", help="stages, counts, best trial, OFAT ranking")
    status.add_argument("name")
    watch = commands.add_parser("watch", help="follow a sweep live (another terminal)")
    watch.add_argument("name")
    watch.add_argument("--interval", type=float, default=2.0)
    export = commands.add_parser("export", help="the best configuration as a runnable spec")
    export.add_argument("name")
    export.add_argument("--format", choices=["yaml", "json", "hf-args"], default="yaml")
    export.add_argument("--top", type=int, default=1)
    export.add_argument("-o", "--output", help="write here instead of stdout")
    export.add_argument("--trials-csv", help="also write every trial to this CSV file")
    for parser in (cancel, listing, status, watch, export):
        parser.add_argument("--db", help="SQLAlchemy URL or SQLite path")
    return {
        "launch": cmd_launch,
        "resume": cmd_resume,
        "cancel": cmd_cancel,
        "list": cmd_list,
        "status": cmd_status,
        "watch": cmd_watch,
        "export": cmd_export,
    }


@contextlib.contextmanager
def _store(args: argparse.Namespace, read_only: bool = False) -> Iterator[Any]:
    """`read_only`: commands that only look (status, list, watch, export) never migrate or
    write, so they work on a read-only copy of a database."""
    from sweepctl.storage import Store, resolve_db_url

    store = Store(resolve_db_url(args.db), read_only=read_only)
    try:
        yield store
    finally:
        store.close()


def cmd_launch(args: argparse.Namespace, console: Console) -> int:
    from sweepctl.orchestrator.sweep import launch
    from sweepctl.spec.models import load_spec

    spec = load_spec(args.spec)
    check_launchable(spec, args.spec, args.runner)
    warn_about_plan(spec)
    if args.server:
        from sweepctl.service.client import submit

        return submit(args.server, spec, console)
    with _store(args) as store:
        exists = _sweep_state(store, spec.name) is not None
    if exists and args.if_exists == "resume":
        return _resume(args, console, spec)
    return _drive(args, console, spec, launch)


def warn_about_plan(spec: Any) -> None:
    """Valid plans that would answer the wrong question (spec.plan_warnings), on stderr."""
    from sweepctl.spec.plan_warnings import plan_warnings

    for line in plan_warnings(list(spec.stages), spec.search_space):
        print(f"sweepctl: warning: {line}", file=sys.stderr)


def cmd_resume(args: argparse.Namespace, console: Console) -> int:
    from sweepctl.orchestrator.budget import raised_budget
    from sweepctl.spec.models import SweepSpec

    with _store(args) as store:
        stored = store.sweep_spec(args.name)
        if args.budget:
            budget = raised_budget(stored.get("budget") or {}, budget_changes(args.budget))
            store.set_sweep_budget(args.name, budget)
            stored = {**stored, "budget": budget}
        spec = SweepSpec.model_validate(stored)
    check_launchable(spec, f"sweep {args.name}", args.runner)  # its data may have changed
    return _resume(args, console, spec)


def budget_changes(assignments: list[str]) -> dict[str, Any]:
    """`--budget KEY=VALUE` as a dict; VALUE `none` removes the limit."""
    from sweepctl.spec.errors import UsageError

    changes: dict[str, Any] = {}
    for assignment in assignments:
        key, sep, value = assignment.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--budget {assignment!r}: expected KEY=VALUE, e.g. max_failures=10")
        changes[key.strip()] = None if value.strip().lower() == "none" else value.strip()
    return changes


def _resume(args: argparse.Namespace, console: Console, spec: Any) -> int:
    """A finished sweep has nothing to resume: show its result instead."""
    from sweepctl.orchestrator.sweep import resume
    from sweepctl.storage import SweepState

    with _store(args) as store:
        if _sweep_state(store, spec.name) is SweepState.COMPLETED:
            console.print(f"sweep {spec.name}: already COMPLETED")
            _print_best(console, store, spec.name)
            return 0
    return _drive(args, console, spec, resume)


def _drive(args: argparse.Namespace, console: Console, spec: Any, action: Any) -> int:
    """Exit 0: COMPLETED with every point trained; 1: FAILED, CANCELLED (Ctrl-C, SIGTERM,
    `sweepctl cancel`), STOPPED (a budget used up) or COMPLETED with given-up points; 2
    (from main): bad input, or the sweep is owned by another orchestrator."""
    from sweepctl.orchestrator.backends import InlineBackend, RayBackend
    from sweepctl.orchestrator.sweep import SweepRun, given_up_points
    from sweepctl.orchestrator.sweep_report import trials_table
    from sweepctl.storage import SweepState, resolve_db_url, sweepctl_home

    url = resolve_db_url(args.db)
    with _store(args) as store:
        _refuse_if_owned(store, spec.name)
        resources = spec.resources
        backend = (
            InlineBackend()
            if args.backend == "inline"
            else RayBackend(resources.cpus_per_trial, resources.gpus_per_trial, args.ray_address)
        )
        live = Live(console=console, refresh_per_second=2, transient=False)

        def show(kind: str, data: dict[str, Any]) -> None:
            live.update(trials_table(store, spec.name, limit=30))

        run = SweepRun(spec, store, backend, url, str(sweepctl_home()), args.runner, show)
        run.role = args.command
        try:
            with live, _sigterm_as_interrupt():
                state = action(run)
        except KeyboardInterrupt:
            console.print(f"sweep {spec.name}: CANCELLED (interrupted); continue it with "
                          f"`sweepctl resume {spec.name}`")  # fmt: skip
            return 1
        finally:
            backend.shutdown()
        sweep = store.get_sweep(spec.name)
        reason = f": {sweep.error}" if sweep.error else ""
        console.print(f"sweep {spec.name}: {state.value}{reason}", highlight=False, soft_wrap=True)
        if state is SweepState.STOPPED:
            console.print(f"continue it with `sweepctl resume {spec.name} --budget KEY=VALUE`")
        if state is not SweepState.COMPLETED:
            return 1
        _print_best(console, store, spec.name)
        given_up = given_up_points(store, spec.name)
        if given_up:
            console.print(f"{given_up} point(s) given up after their retries (sweepctl status)")
            return 1
    return 0


def _refuse_if_owned(store: Any, name: str) -> None:
    """Before Ray starts: a sweep driven by a live orchestrator (or queued for the server)
    is refused with its owner's name; the lease itself is taken in orchestrator.sweep."""
    from sweepctl.spec.errors import UsageError
    from sweepctl.storage import SweepState
    from sweepctl.storage.liveness import lease_holder

    try:
        sweep = store.get_sweep(name)
    except Exception:
        return
    holder = lease_holder(sweep)
    if holder is not None:
        raise UsageError(holder)
    if sweep.controller == "server" and sweep.state in (SweepState.PENDING, SweepState.RUNNING):
        raise UsageError(
            f"sweep {name!r} belongs to `sweepctl serve` (state {sweep.state.value}); "
            "resume or cancel it through the server"
        )


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (a scheduler, `kill`, systemd) ends the sweep like Ctrl-C: trials stopped
    and recorded CANCELLED, the sweep resumable. Only the main thread can set handlers."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _sweep_state(store: Any, name: str) -> Any:
    from sweepctl.storage import StoreError

    try:
        return store.get_sweep(name).state
    except StoreError:
        return None


def _print_best(console: Console, store: Any, name: str) -> None:
    from sweepctl.orchestrator.confirmed import confirmed_best, winner_text
    from sweepctl.orchestrator.export import export_payload
    from sweepctl.orchestrator.sweep_report import (
        compact_params,
        status_renderables,
        warning_lines,
        warnings_of,
    )
    from sweepctl.spec.errors import UsageError
    from sweepctl.storage import sweepctl_home

    try:
        payload = export_payload(store, name, "yaml")
    except UsageError as exc:
        console.print(f"no export: {exc}")
        return
    path = sweepctl_home() / "exports" / f"{name}-best.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(payload)
    for renderable in status_renderables(store, name, with_warnings=False):
        console.print(renderable)
    for line in warning_lines(warnings_of(store, name)):  # what not to trust, next to the answer
        console.print(line, highlight=False, soft_wrap=True)
    console.print(f"best configuration written to {path}  (sweepctl trial {path})")
    confirmed = confirmed_best(store.sweep_row(name).stages)
    if confirmed is not None:  # the last line says what the seeds could and could not tell
        console.print(winner_text(confirmed, compact_params), highlight=False, soft_wrap=True)


def _status(store: Any, name: str) -> list[Any]:
    from sweepctl.orchestrator.sweep_report import status_renderables

    return status_renderables(store, name)


def cmd_cancel(args: argparse.Namespace, console: Console) -> int:
    from sweepctl.orchestrator.reasons import CANCEL_REASON
    from sweepctl.spec.errors import UsageError
    from sweepctl.storage import SweepState, TrialState

    with _store(args) as store:
        state = store.get_sweep(args.name).state
        if state not in (SweepState.PENDING, SweepState.RUNNING):
            raise UsageError(f"sweep {args.name!r} is already {state.value}; nothing to cancel")
        store.set_sweep_state(args.name, SweepState.CANCELLED)
        stopped = store.fail_running_trials(args.name, CANCEL_REASON, state=TrialState.CANCELLED)
    console.print(f"sweep {args.name}: CANCELLED ({len(stopped)} running trial(s) stopped)")
    return 0


def cmd_list(args: argparse.Namespace, console: Console) -> int:
    from sweepctl.orchestrator.sweep_report import sweeps_table

    with _store(args, read_only=True) as store:
        console.print(sweeps_table(store))
    return 0


def cmd_status(args: argparse.Namespace, console: Console) -> int:
    with _store(args, read_only=True) as store:
        for renderable in _status(store, args.name):
            console.print(renderable)
    return 0


def cmd_watch(args: argparse.Namespace, console: Console) -> int:
    from sweepctl.orchestrator.sweep_report import trials_table
    from sweepctl.storage import SweepState

    finished = {SweepState.COMPLETED, SweepState.FAILED, SweepState.CANCELLED, SweepState.STOPPED}
    with _store(args, read_only=True) as store, Live(console=console, refresh_per_second=1) as live:
        while True:
            live.update(trials_table(store, args.name, limit=40))
            state = store.sweep_row(args.name).state  # no spec read on every refresh
            if state in finished:
                break
            time.sleep(args.interval)
    console.print(f"sweep {args.name}: {state.value}")
    return 0


def cmd_export(args: argparse.Namespace, console: Console) -> int:
    from sweepctl.orchestrator.export import export_payload, write_trials_csv

    with _store(args, read_only=True) as store:
        payload = export_payload(store, args.name, args.format, top=args.top)
        if args.trials_csv:
            write_trials_csv(store, args.name, Path(args.trials_csv))
    if args.output:
        Path(args.output).write_text(payload)
        console.print(f"wrote {args.output}")
    else:
        print(payload, end="" if payload.endswith("\n") else "\n")
    return 0
