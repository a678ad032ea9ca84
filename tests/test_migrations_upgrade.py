"""The migrations upgrade a database made by the release before this change (0.1.0) without
losing rows, on a real SQLite file and on PostgreSQL.

The fixtures were written by the 0.1.0 code itself (tests/fixtures/README.md). Each test
reads the old database with plain SQL first (the Store migrates on open, so it cannot be
the witness of what was there), then opens it with this code and compares.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import create_engine, inspect, make_url, text

from sweepctl.storage import Store, SweepState, TrialState, migrate
from sweepctl.storage.models import VERSION_TABLE

pytest_plugins = ["tests.storage_backends"]  # backend (sqlite, postgresql) and pg_url

FIXTURES = Path(__file__).parent / "fixtures"
SQLITE_FIXTURE = FIXTURES / "store-0.1.0.sqlite"
POSTGRES_FIXTURE = FIXTURES / "store-0.1.0.postgres.sql"
RELEASE_REVISION = "0005"  # what 0.1.0 left in the fixtures; this code may need a later head
# Tables a migration after 0005 fills with rows of its own, with the reason. None so far:
# a migration that adds rows lists its table here, every other table must keep its count.
GROWS_BY_MIGRATION: dict[str, str] = {}
SWEEPS = {
    "upgrade-a": SweepState.COMPLETED,
    "upgrade-b": SweepState.CANCELLED,
    "upgrade-c": SweepState.RUNNING,
}
SHOWN = ("state", "objective", "params", "attempt", "retry_of", "failure_kind", "error")
TRIAL_COLUMNS = (
    "t.id, s.name, t.stage, t.number, t.state, t.objective, t.attempt, t.retry_of, "
    "t.failure_kind, t.error, t.params, t.metrics"
)


# --- the old database, as plain SQL sees it -------------------------------------------------


def _load_dump(url: str, dump: str) -> None:
    """psql's meta-commands (pg_dump 15.14+ writes `\\restrict`) are not SQL: drop them."""
    sql = "\n".join(line for line in dump.splitlines() if not line.startswith("\\"))
    conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as connection:
        connection.execute(sql.encode())  # no parameters, so many statements in one go


@pytest.fixture
def old_store_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A private copy of the 0.1.0 store: a copied file, or the dump in a new database."""
    if backend == "sqlite":
        path = tmp_path / SQLITE_FIXTURE.name
        shutil.copyfile(SQLITE_FIXTURE, path)
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("pg_url")  # dropped at teardown
    _load_dump(url, POSTGRES_FIXTURE.read_text())
    return url


def _json(value: Any) -> Any:
    """SQLite hands JSON columns back as text, PostgreSQL's JSONB as Python values."""
    return json.loads(value) if isinstance(value, str) else value


def _row_counts(url: str) -> dict[str, int]:
    """Every table's rows: sweepctl's, Optuna's and both version tables."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            tables = inspect(connection).get_table_names()
            count = 'SELECT count(*) FROM "{}"'
            return {t: connection.execute(text(count.format(t))).scalar_one() for t in tables}
    finally:
        engine.dispose()


def _raw(url: str, query: str) -> list[Any]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return list(connection.execute(text(query)))
    finally:
        engine.dispose()


def _raw_trials(url: str) -> dict[int, dict[str, Any]]:
    query = f"SELECT {TRIAL_COLUMNS} FROM sweepctl_trials t JOIN sweepctl_sweeps s"
    rows = _raw(url, f"{query} ON s.id = t.sweep_id")
    keys = ("id", "sweep", "stage", "number", "state", "objective", "attempt", "retry_of")
    keys += ("failure_kind", "error", "params", "metrics")
    trials = {row.id: dict(zip(keys, row, strict=True)) for row in rows}
    for trial in trials.values():
        trial["params"], trial["metrics"] = _json(trial["params"]), _json(trial["metrics"])
    return trials


def _raw_evaluations(url: str) -> dict[int, list[tuple[float, int, float | None]]]:
    query = "SELECT trial_id, epoch, step, eval_loss FROM sweepctl_evaluations ORDER BY step"
    found: dict[int, list[tuple[float, int, float | None]]] = {}
    for trial_id, epoch, step, eval_loss in _raw(url, query):
        found.setdefault(trial_id, []).append((epoch, step, eval_loss))
    return found


def _raw_artifacts(url: str) -> dict[int, list[tuple[str, str, int | None]]]:
    query = "SELECT trial_id, kind, uri, size_bytes FROM sweepctl_artifacts ORDER BY id"
    found: dict[int, list[tuple[str, str, int | None]]] = {}
    for trial_id, kind, uri, size in _raw(url, query):
        found.setdefault(trial_id, []).append((kind, uri, size))
    return found


def _raw_revision(url: str) -> str:
    (row,) = _raw(url, f"SELECT version_num FROM {VERSION_TABLE}")
    return str(row.version_num)


# --- the tests ------------------------------------------------------------------------------


def test_opening_a_0_1_0_store_migrates_it_to_head_and_keeps_every_tables_rows(
    old_store_url: str,
) -> None:
    before = _row_counts(old_store_url)
    assert _raw_revision(old_store_url) == RELEASE_REVISION  # the fixture is the old release's
    assert before["sweepctl_trials"] == 18 and before["trials"] > 0  # sweepctl's and Optuna's

    with Store(old_store_url) as store:
        assert migrate.current_revision(store._engine) == migrate.head_revision()
        assert migrate.schema_diff(store._engine) == []  # the same schema a new store gets

    after = _row_counts(old_store_url)
    assert before.keys() <= after.keys()
    kept = {t: n for t, n in before.items() if t not in GROWS_BY_MIGRATION}
    assert {t: after[t] for t in kept} == kept
    assert all(after[t] >= before[t] for t in GROWS_BY_MIGRATION if t in before)


def _new_trials(store: Store) -> dict[int, Any]:
    return {t.id: t for name in SWEEPS for t in store.list_trials(name)}


def _as_raw(trial: Any) -> dict[str, Any]:
    """The new record in the shape of `_raw_trials`' rows."""
    return {
        "id": trial.id,
        "sweep": trial.sweep_name,
        "stage": trial.stage,
        "number": trial.number,
        "state": trial.state.name,
        "objective": trial.objective,
        "attempt": trial.attempt,
        "retry_of": trial.retry_of,
        "failure_kind": trial.failure_kind,
        "error": trial.error,
        "params": trial.params,
        "metrics": trial.metrics,
    }


def test_the_upgraded_store_reads_back_every_sweep_stage_trial_evaluation_and_artifact(
    old_store_url: str,
) -> None:
    trials, evaluations = _raw_trials(old_store_url), _raw_evaluations(old_store_url)
    artifacts = _raw_artifacts(old_store_url)
    with Store(old_store_url) as store:
        assert {n: store.get_sweep(n).state for n in store.sweep_names()} == SWEEPS
        stages = [(s.name, s.strategy, s.state) for s in store.get_sweep("upgrade-a").stages]
        read = _new_trials(store)
    assert stages == [
        ("screen", "ofat", SweepState.COMPLETED),
        ("tune", "bayes", SweepState.COMPLETED),
    ]
    assert {i: _as_raw(t) for i, t in read.items()} == trials
    assert {
        i: [(e.epoch, e.step, e.eval_loss) for e in t.evaluations]
        for i, t in read.items()
        if t.evaluations
    } == evaluations
    assert {
        i: [(a.kind, a.uri, a.size_bytes) for a in t.artifacts]
        for i, t in read.items()
        if t.artifacts
    } == artifacts


def test_the_0_1_0_fixture_holds_every_trial_state_a_retry_and_partial_curves(
    old_store_url: str,
) -> None:
    """What the upgrade is tested on: if a fixture lost its variety, the tests above would
    pass on too little."""
    with Store(old_store_url) as store:
        trials = list(_new_trials(store).values())
    assert set(Counter(t.state for t in trials)) == set(TrialState) - {TrialState.PENDING}
    failed = {t.failure_kind: t for t in trials if t.state is TrialState.FAILED}
    assert failed.keys() == {"oom", "error"}
    (retry,) = [t for t in trials if t.attempt == 2]
    assert retry.retry_of == failed["oom"].id and retry.params == failed["oom"].params
    assert retry.state is TrialState.COMPLETED
    stopped = [t for t in trials if t.state in (TrialState.CANCELLED, TrialState.RUNNING)]
    assert len(stopped) == 2 and all(0 < len(t.evaluations) < 4 for t in stopped)


def _sweepctl(cwd: Path, *args: str) -> str:
    """The installed CLI, as a user runs it; its stdout, after asserting exit 0."""
    done = subprocess.run(
        [sys.executable, "-m", "sweepctl", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _best(trials: dict[int, dict[str, Any]], sweep: str) -> dict[str, Any]:
    """The lowest loss among the sweep's COMPLETED trials (the fixtures minimise loss)."""
    done = [t for t in trials.values() if t["sweep"] == sweep and t["state"] == "COMPLETED"]
    return min(done, key=lambda t: t["objective"])


def test_status_and_show_read_an_upgraded_0_1_0_store(old_store_url: str, tmp_path: Path) -> None:
    trials = _raw_trials(old_store_url)
    Store(old_store_url).close()  # the upgrade; status and show only read (never migrate)

    status = _sweepctl(tmp_path, "status", "upgrade-a", "--db", old_store_url)
    best = _best(trials, "upgrade-a")
    assert "upgrade-a" in status and "COMPLETED" in status
    assert "screen" in status and "tune" in status
    assert f"trial {best['id']} " in status and f"{best['objective']:.4f}" in status

    retried = next(t for t in trials.values() if t["attempt"] == 2)
    for expected in (retried, trials[retried["retry_of"]]):  # the retry, the oom it retries
        show = ["show", str(expected["id"]), "--db", old_store_url, "--json"]
        shown = json.loads(_sweepctl(tmp_path, *show))
        assert {key: shown[key] for key in SHOWN} == {key: expected[key] for key in SHOWN}
        assert shown["sweep_name"] == expected["sweep"]
