"""`sweepctl` command line.

Exit codes: 0 success; 1 the trial ran and FAILED (NaN loss, crash); 2 bad input (spec,
data, model, database URL), reported as one line naming the field or file, with nothing
written to the store.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import gc
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from rich.console import Console

from sweepctl.compare_cli import register as register_compare_command
from sweepctl.serve_cli import register as register_serve_command
from sweepctl.spec.errors import USAGE_EXIT_CODE, UsageError
from sweepctl.sweep_cli import register as register_sweep_commands

# Tokenization happens once per sweep in datasets.map; the fast tokenizers' own thread pool
# would only fight Trainer's dataloader for the same cores and print fork warnings.
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sweepctl", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    validate = commands.add_parser("validate", help="check a sweep spec and its data files")
    validate.add_argument("spec")

    trial = commands.add_parser("trial", help="run one fine-tuning trial and store it")
    trial.add_argument("spec")
    trial.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a hyperparameter (learning_rate=3e-5) or a spec key (dataset.train_size=500)",
    )
    trial.add_argument(
        "--db",
        help="SQLAlchemy URL or SQLite path (default: $SWEEPCTL_DB or ./sweepctl-runs/sweepctl.db)",
    )
    trial.add_argument("--json", action="store_true", help="print the final record as JSON")
    trial.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    show = commands.add_parser("show", help="print a stored trial")
    show.add_argument("trial_id", type=int)
    show.add_argument("--db")
    show.add_argument("--json", action="store_true")
    COMMANDS.update(register_sweep_commands(commands))
    COMMANDS.update(register_serve_command(commands))
    COMMANDS.update(register_compare_command(commands))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # Python's exit collects garbage over every object still alive (SQLAlchemy's and rich's
    # classes among them): a fifth of a `sweepctl status`. Frozen objects are skipped and
    # the OS frees the process whole. Registered before the command runs, so it runs after
    # the exit handlers the command registers (Ray's, W&B's).
    atexit.register(gc.freeze)
    args = build_parser().parse_args(argv)
    to_stderr = bool(getattr(args, "json", False))
    stream = sys.stderr if to_stderr else sys.stdout
    # piped output (logs, CI) gets a table wide enough not to fold the column titles
    console = Console(stderr=to_stderr, soft_wrap=True, width=None if stream.isatty() else 120)
    try:
        return COMMANDS[args.command](args, console)
    except UsageError as exc:
        print(f"sweepctl: error: {exc}", file=sys.stderr)
        return USAGE_EXIT_CODE
    except _store_errors() as exc:
        print(f"sweepctl: error: {_one_line(exc)}", file=sys.stderr)
        return USAGE_EXIT_CODE
    except OSError as exc:  # a read-only or full disk under SWEEPCTL_HOME, a missing folder
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"sweepctl: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return USAGE_EXIT_CODE


def _store_errors() -> tuple[type[Exception], ...]:
    """The store's own errors, and the driver errors Optuna's storage lets through (its
    commit on a full disk raises SQLAlchemy's OperationalError from inside Optuna)."""
    from optuna.exceptions import StorageInternalError
    from sqlalchemy.exc import SQLAlchemyError

    from sweepctl.storage import StoreError

    return (StoreError, SQLAlchemyError, StorageInternalError)


def _one_line(exc: BaseException) -> str:
    """SQLAlchemy's messages carry the SQL and a help link, and Optuna wraps them: the
    driver's own first line ("database or disk is full") says what happened."""
    from sweepctl.storage import StoreError

    if isinstance(exc, StoreError):
        return str(exc)  # already one line that names the (redacted) database
    cause: BaseException | None = exc
    while cause is not None:
        original = getattr(cause, "orig", None)
        if original is not None:
            return f"database error: {str(original).strip().splitlines()[0]}"
        cause = cause.__cause__ or cause.__context__
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def cmd_validate(args: argparse.Namespace, console: Console) -> int:
    from sweepctl.orchestrator.preflight import check_notify_targets, check_trial_inputs
    from sweepctl.spec.models import load_spec

    spec = load_spec(args.spec)
    checked = check_trial_inputs(spec)
    check_notify_targets(spec.notify.apprise, "notify.apprise")
    if spec.stages:
        from sweepctl.spec.baseline import baseline

        baseline(spec)  # OFAT and grid start from the spec's own values: they must exist
    console.print(
        f"{args.spec}: ok — sweep '{spec.name}', model {spec.model}, "
        f"{len(spec.search_space)} search parameter(s)"
        + ("" if checked else " (model config not checked: not available offline)")
    )
    from sweepctl.sweep_cli import warn_about_plan

    warn_about_plan(spec)
    return 0


def cmd_trial(args: argparse.Namespace, console: Console) -> int:
    from sweepctl.spec.models import load_spec
    from sweepctl.spec.overrides import apply_overrides, parse_assignments
    from sweepctl.storage import Store, TrialState, resolve_db_url, sweepctl_home
    from sweepctl.workers.trial import run_trial

    params = parse_assignments(args.overrides)
    spec = apply_overrides(load_spec(args.spec), params)
    _quiet_library_progress_bars()
    store = Store(resolve_db_url(args.db))
    try:
        # Trainer writes its log lines to stdout; with --json stdout is reserved for the record
        with contextlib.redirect_stdout(sys.stderr if args.json else sys.stdout):
            outcome = run_trial(spec, params, store, sweepctl_home(), progress=not args.no_progress)
        record = store.get_trial(outcome.trial_id).to_dict()
    finally:
        store.close()
    _print_record(args, console, record)
    if outcome.state is not TrialState.COMPLETED:
        print(f"sweepctl: trial {outcome.trial_id} failed: {outcome.error}", file=sys.stderr)
        return 1
    return 0


def cmd_show(args: argparse.Namespace, console: Console) -> int:
    from sweepctl.storage import Store, resolve_db_url

    store = Store(resolve_db_url(args.db), read_only=True)
    try:
        record = store.get_trial(args.trial_id).to_dict()
    finally:
        store.close()
    _print_record(args, console, record)
    return 0


def _quiet_library_progress_bars() -> None:
    """Loading, tokenizing and saving bars bury the one bar that matters: training."""
    import datasets
    from transformers.utils import logging as hf_logging

    datasets.disable_progress_bars()
    hf_logging.disable_progress_bar()


def _print_record(args: argparse.Namespace, console: Console, record: dict[str, Any]) -> None:
    from sweepctl.orchestrator.report import print_trial

    if args.json:
        print(json.dumps(record, indent=2, default=str))
    else:
        print_trial(console, record)


COMMANDS: dict[str, Any] = {"validate": cmd_validate, "trial": cmd_trial, "show": cmd_show}


if __name__ == "__main__":
    raise SystemExit(main())
