"""Contract tests for storage/: every backend must behave identically.

Backend-parametrised tests take the ``store``/``store_url`` fixtures (and small
helpers) from tests/storage_backends.py and so run on real SQLite and real
PostgreSQL.
"""

from __future__ import annotations

import json
import math
import multiprocessing
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect, text

from sweepctl.storage import migrate
from sweepctl.storage.jsonsafe import sanitize_json
from sweepctl.storage.models import VERSION_TABLE
from sweepctl.storage.records import EvaluationRecord
from sweepctl.storage.states import StateTransitionError, TrialState
from sweepctl.storage.store import Store, StoreError
from sweepctl.storage.urls import default_db_url, redact_url, resolve_db_url, sweepctl_home

pytest.register_assert_rewrite("tests.storage_backends")  # before the import below
from tests.storage_backends import (  # noqa: E402
    SPEC,
    drive,
    new_trial,
    race,
    running_trial,
    worker_process,
)

pytest_plugins = ["tests.storage_backends"]

S = TrialState
SWEEPCTL_TABLES = {
    "sweepctl_sweeps",
    "sweepctl_trials",
    "sweepctl_evaluations",
    "sweepctl_artifacts",
    "sweepctl_stages",
}
CONFUSION = [[50, 3], [4, 43]]


# --- migrations -----------------------------------------------------------------------


def test_migrations_create_exactly_the_prefixed_tables(store_url: str) -> None:
    with Store(store_url) as store:
        tables = set(inspect(store._engine).get_table_names())
        assert tables == SWEEPCTL_TABLES | {VERSION_TABLE}
        assert migrate.current_revision(store._engine) == migrate.head_revision() == "0006"
        assert migrate.schema_diff(store._engine) == []  # ORM models == migration


def test_upgrade_is_idempotent(store: Store) -> None:
    new_trial(store)
    migrate.upgrade(store._engine)
    migrate.upgrade(store._engine)
    with Store(store._url) as reopened:
        assert reopened.count_rows()["sweepctl_trials"] == 1
    assert migrate.current_revision(store._engine) == migrate.head_revision()


def test_concurrent_first_open_of_empty_database(store_url: str) -> None:
    assert race([lambda: Store(store_url).close() for _ in range(4)]) == [None] * 4
    with Store(store_url) as store:
        assert migrate.schema_diff(store._engine) == []


def test_worker_processes_share_one_database(store_url: str) -> None:
    with multiprocessing.get_context("spawn").Pool(3) as pool:
        results = pool.starmap(worker_process, [(store_url, 5)] * 3)
    with Store(store_url) as store:
        trials = store.list_trials("shared")
    assert sorted(i for ids in results for i in ids) == sorted(t.id for t in trials)
    assert [t.number for t in trials] == list(range(15))
    assert {t.state for t in trials} == {S.COMPLETED}


@pytest.mark.parametrize("optuna_first", [True, False], ids=["optuna-first", "store-first"])
def test_shares_database_with_optuna(store_url: str, optuna_first: bool) -> None:
    optuna = pytest.importorskip("optuna")
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def optuna_study() -> Any:
        rdb = optuna.storages.RDBStorage(store_url)
        study = optuna.create_study(study_name="s", storage=rdb, load_if_exists=True)
        study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=2)
        rdb.engine.dispose()
        return study

    if optuna_first:
        optuna_study()
    with Store(store_url) as store:
        running_trial(store)
        if not optuna_first:
            optuna_study()
        tables = set(inspect(store._engine).get_table_names())
        assert {"studies", "trials", "alembic_version", VERSION_TABLE} <= tables
        assert migrate.schema_diff(store._engine) == []
        assert store.count_rows()["sweepctl_trials"] == 1
    assert len(optuna_study().trials) == 4


# --- trials and lifecycle -----------------------------------------------------------


def test_create_trial_numbers_per_sweep_and_keeps_first_spec(store: Store) -> None:
    ids = [new_trial(store, "a") for _ in range(3)]
    store.create_trial("a", {"other": "spec"}, {}, {})
    other = new_trial(store, "b")
    assert [t.number for t in store.list_trials("a")] == [0, 1, 2, 3]
    assert store.get_trial(other).number == 0
    assert store.sweep_spec("a") == SPEC
    trial = store.get_trial(ids[1])
    assert (trial.sweep_name, trial.state, trial.stage) == ("a", S.PENDING, None)
    assert trial.created_at.tzinfo is not None
    assert trial.started_at is None and trial.finished_at is None
    staged = store.create_trial("a", SPEC, {}, {}, stage="coarse")
    assert store.get_trial(staged).stage == "coarse"


ALLOWED_PATHS = [
    [S.RUNNING, S.COMPLETED],
    [S.RUNNING, S.PRUNED],
    [S.RUNNING, S.FAILED],
    [S.FAILED],
]


@pytest.mark.parametrize("path", ALLOWED_PATHS, ids=lambda p: "-".join(s.name for s in p))
def test_allowed_transitions_set_timestamps(store: Store, path: list[TrialState]) -> None:
    trial = store.get_trial(drive(store, path))
    assert trial.state is path[-1]
    assert trial.finished_at is not None and trial.finished_at >= trial.created_at
    if S.RUNNING in path:
        assert trial.started_at is not None
        assert trial.created_at <= trial.started_at <= trial.finished_at
    else:
        assert trial.started_at is None


@pytest.mark.parametrize("finished", [S.COMPLETED, S.PRUNED, S.FAILED])
def test_finished_states_refuse_every_change(store: Store, finished: TrialState) -> None:
    trial_id = drive(store, [S.RUNNING, finished])
    before = store.get_trial(trial_id)
    for target in TrialState:
        with pytest.raises(StateTransitionError, match=f"trial {trial_id} is already"):
            store.set_trial_state(trial_id, target, error="late message")
    assert store.get_trial(trial_id) == before


@pytest.mark.parametrize(
    ("path", "target"),
    [([], S.COMPLETED), ([], S.PRUNED), ([], S.PENDING), ([S.RUNNING], S.RUNNING),
     ([S.RUNNING], S.PENDING)],
    ids=["PENDING-COMPLETED", "PENDING-PRUNED", "PENDING-PENDING", "RUNNING-RUNNING",
         "RUNNING-PENDING"],
)  # fmt: skip
def test_illegal_transitions_are_refused(
    store: Store, path: list[TrialState], target: TrialState
) -> None:
    trial_id = drive(store, path)
    with pytest.raises(StateTransitionError, match="not allowed"):
        store.set_trial_state(trial_id, target)
    assert store.get_trial(trial_id).state is (path[-1] if path else S.PENDING)


def test_result_fields_are_written_and_sanitised(store: Store) -> None:
    trial_id = running_trial(store)
    metrics = {"f1": 0.9, "loss": math.nan, "cm": CONFUSION, "hist": (1.0, math.inf)}
    resources = {"wall_s": 12.5, "samples_per_s": -math.inf, "peak_mem": 2**40}
    store.set_trial_state(
        trial_id, S.COMPLETED, objective=0.9, metrics=metrics, resources=resources
    )
    trial = store.get_trial(trial_id)
    assert trial.objective == pytest.approx(0.9)
    assert trial.metrics == {"f1": 0.9, "loss": None, "cm": CONFUSION, "hist": [1.0, None]}
    assert trial.resources == {"wall_s": 12.5, "samples_per_s": None, "peak_mem": 2**40}


def test_failure_records_reason_and_nan_objective_becomes_null(store: Store) -> None:
    trial_id = running_trial(store)
    store.set_trial_state(
        trial_id, S.FAILED, error="CUDA OOM", traceback="Traceback...\n", objective=math.nan
    )
    trial = store.get_trial(trial_id)
    assert (trial.error, trial.traceback, trial.objective) == ("CUDA OOM", "Traceback...\n", None)


def finish_race(store: Store, trial_id: int) -> list[BaseException | None]:
    return race(
        [
            lambda: store.set_trial_state(trial_id, S.COMPLETED, objective=1.0),
            lambda: store.set_trial_state(trial_id, S.FAILED, error="worker lost"),
        ]
    )


def test_concurrent_finish_has_exactly_one_winner(store: Store) -> None:
    for _ in range(5):
        trial_id = running_trial(store)
        outcomes = finish_race(store, trial_id)
        winners = [i for i, outcome in enumerate(outcomes) if outcome is None]
        assert len(winners) == 1, outcomes
        loser = outcomes[1 - winners[0]]
        assert isinstance(loser, StateTransitionError), loser
        assert store.get_trial(trial_id).state is (S.COMPLETED, S.FAILED)[winners[0]]


def test_concurrent_create_trial_numbers_are_unique(store: Store) -> None:
    created: list[int] = []
    outcomes = race([lambda: created.append(new_trial(store, "fresh")) for _ in range(6)])
    assert outcomes == [None] * 6
    assert sorted(t.number for t in store.list_trials("fresh")) == list(range(6))


# --- evaluations and artifacts ------------------------------------------------------


def test_record_evaluation_only_while_running(store: Store) -> None:
    trial_id = new_trial(store)
    record = EvaluationRecord(epoch=1.0, step=10, eval_loss=0.5)
    with pytest.raises(StateTransitionError, match="PENDING"):
        store.record_evaluation(trial_id, record)
    store.set_trial_state(trial_id, S.RUNNING)
    store.record_evaluation(trial_id, record)
    store.set_trial_state(trial_id, S.COMPLETED)
    with pytest.raises(StateTransitionError, match="COMPLETED"):
        store.record_evaluation(trial_id, EvaluationRecord(epoch=2.0, step=20))
    assert store.count_rows()["sweepctl_evaluations"] == 1


def test_evaluations_round_trip_in_step_order(store: Store) -> None:
    trial_id = running_trial(store)
    late = EvaluationRecord(
        epoch=2.0, step=200, training_loss=math.nan, eval_loss=0.3, accuracy=0.91, f1=0.9,
        precision=0.89, recall=math.inf, learning_rate=1e-5, grad_norm=1.5,
        metrics={"eval_loss": 0.3, "confusion_matrix": CONFUSION, "bad": math.nan},
    )  # fmt: skip
    store.record_evaluation(trial_id, late)
    store.record_evaluation(trial_id, EvaluationRecord(epoch=1.0, step=100, f1=0.8))
    evaluations = store.get_trial(trial_id).evaluations
    assert [e.step for e in evaluations] == [100, 200]
    stored = evaluations[1]
    assert (stored.training_loss, stored.recall, stored.f1) == (None, None, 0.9)
    assert stored.metrics == {"eval_loss": 0.3, "confusion_matrix": CONFUSION, "bad": None}


def test_duplicate_evaluation_step_is_rejected_without_side_effects(store: Store) -> None:
    trial_id = running_trial(store)
    store.record_evaluation(trial_id, EvaluationRecord(epoch=1.0, step=5))
    before = store.count_rows()
    with pytest.raises(StoreError, match=f"trial {trial_id} already has an evaluation at step 5"):
        store.record_evaluation(trial_id, EvaluationRecord(epoch=1.5, step=5))
    assert store.count_rows() == before


def test_artifacts_round_trip(store: Store) -> None:
    trial_id = running_trial(store)
    store.add_artifact(trial_id, "checkpoint", "file:///runs/ckpt-100", size_bytes=5 * 2**32)
    store.add_artifact(trial_id, "wandb_run", "https://wandb.ai/x/y/runs/z")
    kinds = [(a.kind, a.size_bytes) for a in store.get_trial(trial_id).artifacts]
    assert kinds == [("checkpoint", 5 * 2**32), ("wandb_run", None)]
    with pytest.raises(StoreError, match="trial 424242 not found"):
        store.add_artifact(424242, "checkpoint", "file:///nowhere")


# --- reads ----------------------------------------------------------------------------


def test_get_missing_trial_names_id_and_database(store: Store) -> None:
    with pytest.raises(StoreError) as raised:
        store.get_trial(17)
    assert str(raised.value) == f"trial 17 not found in {store.url}"
    with pytest.raises(StoreError, match="trial 17 not found"):
        store.set_trial_state(17, S.RUNNING)


def test_to_dict_is_json_serialisable(store: Store) -> None:
    trial_id = running_trial(store)
    store.record_evaluation(
        trial_id, EvaluationRecord(epoch=1.0, step=1, metrics={"cm": CONFUSION})
    )
    store.add_artifact(trial_id, "checkpoint", "file:///ckpt", 10)
    data = json.loads(json.dumps(store.get_trial(trial_id).to_dict(), allow_nan=False))
    assert data["state"] == "RUNNING"
    assert datetime.fromisoformat(data["started_at"]).tzinfo is not None
    assert data["finished_at"] is None
    assert data["evaluations"][0]["metrics"]["cm"] == CONFUSION
    assert data["artifacts"] == [{"kind": "checkpoint", "uri": "file:///ckpt", "size_bytes": 10}]


def test_list_trials_sweep_names_and_count_rows(store: Store) -> None:
    assert store.count_rows() == dict.fromkeys(SWEEPCTL_TABLES, 0)
    for sweep in ("zeta", "alpha", "zeta"):
        new_trial(store, sweep)
    assert store.sweep_names() == ["alpha", "zeta"]
    assert [(t.sweep_name, t.number) for t in store.list_trials("zeta")] == [
        ("zeta", 0),
        ("zeta", 1),
    ]
    assert store.list_trials("unknown") == []
    expected = {"sweepctl_sweeps": 2, "sweepctl_trials": 3}
    assert store.count_rows() == {**dict.fromkeys(SWEEPCTL_TABLES, 0), **expected}


def test_failed_create_leaves_nothing_half_written(store: Store) -> None:
    with pytest.raises(TypeError, match=r"\$\.callback"):
        store.create_trial("new", SPEC, {}, {"callback": object()})
    assert store.count_rows() == dict.fromkeys(SWEEPCTL_TABLES, 0)


def test_deleting_a_sweep_cascades(store: Store) -> None:
    trial_id = running_trial(store)
    store.record_evaluation(trial_id, EvaluationRecord(epoch=1.0, step=1))
    store.add_artifact(trial_id, "checkpoint", "file:///ckpt")
    with store._engine.begin() as connection:
        connection.execute(text("DELETE FROM sweepctl_sweeps"))
    assert store.count_rows() == dict.fromkeys(SWEEPCTL_TABLES, 0)


def test_unreachable_database_is_one_clear_line(tmp_path: Path) -> None:
    with pytest.raises(StoreError) as raised:
        Store("postgresql://bob:s3cret@127.0.0.1:1/db")
    message = str(raised.value)
    assert "\n" not in message and "s3cret" not in message
    assert message.startswith("cannot connect to postgresql+psycopg://bob:***@127.0.0.1:1/db")
    with pytest.raises(StoreError, match="cannot connect to sqlite"):
        Store(str(tmp_path))  # a directory is not a database file
    with pytest.raises(StoreError, match="invalid database URL nosuchdb://h/x"):
        Store("nosuchdb://h/x")


def test_sqlite_pragmas(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "deep" / "dir" / "x.db"))  # parent dirs are created
    with store, store._engine.connect() as connection:
        pragmas = {
            name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()
            for name in ("journal_mode", "foreign_keys", "busy_timeout")
        }
    assert pragmas == {"journal_mode": "wal", "foreign_keys": 1, "busy_timeout": 120000}


# --- URLs and sanitising ----------------------------------------------------------------


def test_resolve_db_url_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SWEEPCTL_DB", raising=False)
    monkeypatch.delenv("SWEEPCTL_HOME", raising=False)
    assert sweepctl_home() == tmp_path.resolve() / "sweepctl-runs"
    assert default_db_url() == f"sqlite:///{tmp_path.resolve()}/sweepctl-runs/sweepctl.db"
    monkeypatch.setenv("SWEEPCTL_HOME", str(tmp_path / "home"))
    assert resolve_db_url(None) == f"sqlite:///{tmp_path.resolve()}/home/sweepctl.db"
    monkeypatch.setenv("SWEEPCTL_DB", "postgres://u:p@db:5432/sweeps")
    assert resolve_db_url(None) == "postgresql+psycopg://u:p@db:5432/sweeps"
    assert resolve_db_url("runs/x.db") == f"sqlite:///{tmp_path.resolve()}/runs/x.db"
    assert resolve_db_url("/abs/x.db") == "sqlite:////abs/x.db"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://h/db", "postgresql+psycopg://h/db"),
        ("postgres://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgresql+psycopg2://h/db", "postgresql+psycopg2://h/db"),
        ("sqlite:///rel.db", "sqlite:///rel.db"),
    ],
)
def test_resolve_db_url_rewrites_only_driverless_postgres(given: str, expected: str) -> None:
    assert resolve_db_url(given) == expected


def test_redact_url_hides_password() -> None:
    redacted = redact_url("postgresql+psycopg://sweeper:hunter2@db.example:5432/sweeps")
    assert redacted == "postgresql+psycopg://sweeper:***@db.example:5432/sweeps"
    assert redact_url("sqlite:////tmp/x.db") == "sqlite:////tmp/x.db"


def test_sanitize_json_replaces_non_finite_floats() -> None:
    payload = {"a": math.nan, "b": [math.inf, -math.inf, 1.5], "c": {"d": (1, "x", None, True)}}
    clean = sanitize_json(payload)
    assert clean == {"a": None, "b": [None, None, 1.5], "c": {"d": [1, "x", None, True]}}
    json.dumps(clean, allow_nan=False)
    assert payload["a"] is not None  # input untouched


def test_sanitize_json_unwraps_numpy_and_rejects_unknown_objects() -> None:
    np = pytest.importorskip("numpy")
    clean = sanitize_json({"cm": np.array([[1, 2], [3, 4]]), "f1": np.float32("nan"), 3: 1})
    assert clean == {"cm": [[1, 2], [3, 4]], "f1": None, "3": 1}
    with pytest.raises(TypeError, match=r"\$\.when"):
        sanitize_json({"when": datetime.now(timezone.utc)})


def test_state_helpers() -> None:
    assert {s for s in TrialState if s.is_finished} == {
        S.COMPLETED,
        S.PRUNED,
        S.FAILED,
        S.CANCELLED,
    }
    assert issubclass(StateTransitionError, ValueError)
