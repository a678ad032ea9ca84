"""Contract tests for sweeps and stages in storage/ (migration 0002), on every backend.

Like tests/test_storage.py, every test here runs on real SQLite and real
PostgreSQL through the fixtures in tests/storage_backends.py.
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta, timezone
from functools import partial
from typing import Any

import pytest
from alembic import command
from sqlalchemy import JSON, Integer, String, column, insert, table, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from sweepctl.storage import (
    EvaluationRecord,
    StateTransitionError,
    Store,
    StoreError,
    SweepExistsError,
    SweepState,
    TrialState,
    migrate,
)
from sweepctl.storage.engine import create_store_engine
from sweepctl.storage.models import Trial, UTCDateTime

pytest.register_assert_rewrite("tests.storage_backends")  # before the import below
from tests.storage_backends import SPEC, drive, new_trial, race  # noqa: E402

pytest_plugins = ["tests.storage_backends"]

W = SweepState
T = TrialState
STAGES = [("coarse", "ofat"), ("fine", "tpe")]
# Written out here rather than imported, so the test pins the documented lifecycle.
ALLOWED = {
    (W.PENDING, W.RUNNING),
    (W.PENDING, W.CANCELLED),
    (W.RUNNING, W.RUNNING),
    (W.RUNNING, W.COMPLETED),
    (W.RUNNING, W.FAILED),
    (W.RUNNING, W.CANCELLED),
    (W.FAILED, W.RUNNING),
    (W.CANCELLED, W.RUNNING),
    (W.RUNNING, W.STOPPED),
    (W.STOPPED, W.RUNNING),
}
# How to reach each state from PENDING.
PATH_TO = {
    W.PENDING: [],
    W.RUNNING: [W.RUNNING],
    W.COMPLETED: [W.RUNNING, W.COMPLETED],
    W.FAILED: [W.RUNNING, W.FAILED],
    W.CANCELLED: [W.CANCELLED],
    W.STOPPED: [W.RUNNING, W.STOPPED],
}
ZERO_COUNTS = dict.fromkeys(["PENDING", "RUNNING", "COMPLETED", "PRUNED", "FAILED", "CANCELLED"], 0)


def new_sweep(store: Store, name: str = "sw") -> int:
    return store.create_sweep(name, SPEC, STAGES)


def set_state(store: Store, kind: str, sweep: str, state: SweepState, **kwargs: Any) -> None:
    if kind == "sweep":
        store.set_sweep_state(sweep, state)
    else:
        store.set_stage_state(sweep, "coarse", state, **kwargs)


def current_state(store: Store, kind: str, sweep: str) -> SweepState:
    record = store.get_sweep(sweep)
    return record.state if kind == "sweep" else record.stages[0].state


# --- migration ----------------------------------------------------------------------------

OLD_SWEEPS = table(
    "sweepctl_sweeps",
    column("name", String),
    column("spec", JSON),
    column("created_at", UTCDateTime()),
)
OLD_TRIALS = table(
    "sweepctl_trials",
    column("sweep_id", Integer),
    column("number", Integer),
    column("state", String),
    column("params", JSON),
    column("config", JSON),
    column("created_at", UTCDateTime()),
)


def test_upgrade_from_0001_keeps_existing_sweeps_and_trials(store_url: str) -> None:
    created = datetime(2025, 1, 2, 3, 4, 5, 678900, tzinfo=timezone.utc)
    engine = create_store_engine(store_url)
    try:
        with engine.begin() as connection:
            command.upgrade(migrate.alembic_config(connection), "0001")
            connection.execute(insert(OLD_SWEEPS).values(name="old", spec=SPEC, created_at=created))
            sweep_id = connection.execute(text("SELECT id FROM sweepctl_sweeps")).scalar_one()
            row = {"params": {"lr": 1e-5}, "config": {}, "created_at": created}
            connection.execute(
                insert(OLD_TRIALS).values(sweep_id=sweep_id, number=0, state="RUNNING", **row)
            )
    finally:
        engine.dispose()
    with Store(store_url) as store:
        assert migrate.current_revision(store._engine) == "0006"
        assert migrate.schema_diff(store._engine) == []
        sweep = store.get_sweep("old")
        assert (sweep.state, sweep.stages, sweep.spec) == (W.PENDING, [], SPEC)
        assert sweep.created_at == sweep.updated_at == created
        assert sweep.trial_counts == {**ZERO_COUNTS, "RUNNING": 1}
        [trial] = store.list_trials("old")
        assert (trial.state, trial.optuna_trial_number) == (T.RUNNING, None)
        # The migrated sweep behaves like any trial-only sweep.
        assert store.create_sweep("old", SPEC, STAGES) == sweep_id
        store.set_sweep_state("old", W.RUNNING)
        with store._engine.begin() as connection:
            command.downgrade(migrate.alembic_config(connection), "0001")
            # Downgrade drops columns in place: no table rebuild, so no cascade.
            count = "SELECT count(*) FROM sweepctl_trials"
            assert connection.execute(text(count)).scalar_one() == 1
        migrate.upgrade(store._engine)
        assert migrate.schema_diff(store._engine) == []
        assert store.get_sweep("old").trial_counts["RUNNING"] == 1


# --- create_sweep ------------------------------------------------------------------------


def test_create_sweep_with_stages(store: Store) -> None:
    sweep_id = store.create_sweep("sw", {**SPEC, "loss": math.nan}, STAGES)
    sweep = store.get_sweep("sw")
    assert (sweep.id, sweep.name, sweep.state) == (sweep_id, "sw", W.PENDING)
    assert sweep.spec == {**SPEC, "loss": None}
    assert [(s.name, s.position, s.strategy, s.state, s.summary) for s in sweep.stages] == [
        ("coarse", 0, "ofat", W.PENDING, None),
        ("fine", 1, "tpe", W.PENDING, None),
    ]
    assert sweep.trial_counts == ZERO_COUNTS
    assert sweep.created_at.tzinfo is not None and sweep.updated_at >= sweep.created_at
    data = json.loads(json.dumps(sweep.to_dict(), allow_nan=False))
    assert data["state"] == "PENDING" and data["stages"][1]["state"] == "PENDING"
    assert datetime.fromisoformat(data["updated_at"]) == sweep.updated_at
    assert store.sweep_names() == ["sw"] and store.sweep_spec("sw") == sweep.spec
    assert store.count_rows()["sweepctl_stages"] == 2
    with store._engine.begin() as connection:
        connection.execute(text("DELETE FROM sweepctl_sweeps"))
    assert store.count_rows()["sweepctl_stages"] == 0  # ON DELETE CASCADE


def test_existing_sweep_with_stages_is_refused(store: Store) -> None:
    new_sweep(store)
    before = store.get_sweep("sw")
    with pytest.raises(SweepExistsError) as raised:
        store.create_sweep("sw", {"other": 1}, [("x", "grid")])
    assert str(raised.value) == (
        f"sweep 'sw' already exists in {store.url}; use 'sweepctl resume sw' or another name"
    )
    assert isinstance(raised.value, StoreError)
    assert store.get_sweep("sw") == before


def test_create_sweep_adopts_a_trial_only_sweep(store: Store) -> None:
    first = new_trial(store, "sw")
    second = new_trial(store, "sw")
    store.set_trial_state(second, T.RUNNING)
    store.set_trial_state(second, T.COMPLETED)
    sweep_id = store.get_sweep("sw").id
    assert store.create_sweep("sw", {"new": "spec"}, STAGES) == sweep_id
    sweep = store.get_sweep("sw")
    assert sweep.spec == {"new": "spec"} and [s.name for s in sweep.stages] == ["coarse", "fine"]
    assert sweep.trial_counts == {**ZERO_COUNTS, "PENDING": 1, "COMPLETED": 1}
    assert store.list_trials("sw")[0].id == first
    with pytest.raises(SweepExistsError):
        store.create_sweep("sw", SPEC, STAGES)


@pytest.mark.parametrize(
    ("stages", "match"),
    [
        ([], "at least one stage"),
        ([("a", "ofat"), ("a", "tpe")], r"duplicate stage names \['a'\]"),
        ([("a", "x" * 21)], "strategy must be 1-20 characters"),
        ([("", "ofat")], "stage name must be 1-100 characters"),
    ],
    ids=["empty", "duplicate", "long-strategy", "empty-name"],
)
def test_create_sweep_validates_stages(
    store: Store, stages: list[tuple[str, str]], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        store.create_sweep("sw", SPEC, stages)
    assert set(store.count_rows().values()) == {0}


def test_concurrent_create_sweep_has_one_winner(store: Store) -> None:
    outcomes = race([lambda: new_sweep(store) for _ in range(3)])
    assert sorted(type(o).__name__ for o in outcomes) == [
        "NoneType",
        "SweepExistsError",
        "SweepExistsError",
    ]
    assert store.count_rows()["sweepctl_stages"] == 2


# --- lifecycle -----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["sweep", "stage"])
@pytest.mark.parametrize("start", list(SweepState), ids=lambda s: s.name)
def test_every_transition_is_allowed_or_refused(store: Store, kind: str, start: SweepState) -> None:
    for target in SweepState:
        name = f"{start.name}-{target.name}"
        new_sweep(store, name)
        for state in PATH_TO[start]:
            set_state(store, kind, name, state)
        before = store.get_sweep(name)
        if (start, target) in ALLOWED:
            set_state(store, kind, name, target)
            assert current_state(store, kind, name) is target
            assert store.get_sweep(name).updated_at >= before.updated_at
            continue
        match = "is already COMPLETED" if start is W.COMPLETED else "is not allowed"
        with pytest.raises(StateTransitionError, match=match) as raised:
            set_state(store, kind, name, target)
        label = f"sweep '{name}'" if kind == "sweep" else f"stage 'coarse' of sweep '{name}'"
        assert str(raised.value).startswith(label)
        assert store.get_sweep(name) == before


def test_stage_state_is_independent_of_other_stages_and_the_sweep(store: Store) -> None:
    new_sweep(store)
    store.set_stage_state("sw", "fine", W.CANCELLED)
    sweep = store.get_sweep("sw")
    assert (sweep.state, [s.state for s in sweep.stages]) == (W.PENDING, [W.PENDING, W.CANCELLED])


def test_stage_summary_round_trips_sanitised_and_is_kept(store: Store) -> None:
    new_sweep(store)
    ranking = {"ranking": [{"param": "lr", "spread": 0.12}, {"param": "wd", "spread": math.nan}]}
    store.set_stage_state("sw", "coarse", W.RUNNING, summary={"partial": True})
    store.set_stage_state("sw", "coarse", W.FAILED)  # no summary: the stored one stays
    assert store.get_sweep("sw").stages[0].summary == {"partial": True}
    store.set_stage_state("sw", "coarse", W.RUNNING)
    with pytest.raises(TypeError, match=r"\$\.when"):
        store.set_stage_state("sw", "coarse", W.COMPLETED, summary={"when": object()})
    store.set_stage_state("sw", "coarse", W.COMPLETED, summary=ranking)
    stage = store.get_sweep("sw").stages[0]
    assert stage.state is W.COMPLETED
    assert stage.summary == {
        "ranking": [{"param": "lr", "spread": 0.12}, {"param": "wd", "spread": None}]
    }
    json.dumps(store.get_sweep("sw").to_dict(), allow_nan=False)


def test_unknown_names_are_clear_errors(store: Store) -> None:
    with pytest.raises(StoreError) as raised:
        store.get_sweep("nope")
    assert str(raised.value) == f"sweep 'nope' not found in {store.url}"
    with pytest.raises(StoreError, match="sweep 'nope' not found"):
        store.set_sweep_state("nope", W.RUNNING)
    with pytest.raises(StoreError, match="sweep 'nope' not found"):
        store.set_stage_state("nope", "coarse", W.RUNNING)
    new_sweep(store)
    with pytest.raises(StoreError) as raised:
        store.set_stage_state("sw", "nope", W.RUNNING)
    assert str(raised.value) == f"stage 'nope' not found in sweep 'sw' in {store.url}"


@pytest.mark.parametrize("kind", ["sweep", "stage"])
def test_concurrent_cancel_and_complete_have_exactly_one_winner(store: Store, kind: str) -> None:
    for attempt in range(5):
        name = f"race-{attempt}"
        new_sweep(store, name)
        set_state(store, kind, name, W.RUNNING)
        outcomes = race(
            [
                partial(set_state, store, kind, name, W.CANCELLED),
                partial(set_state, store, kind, name, W.COMPLETED),
            ]
        )
        winners = [i for i, outcome in enumerate(outcomes) if outcome is None]
        assert len(winners) == 1, outcomes
        assert isinstance(outcomes[1 - winners[0]], StateTransitionError), outcomes
        assert current_state(store, kind, name) is (W.CANCELLED, W.COMPLETED)[winners[0]]


# --- reads ---------------------------------------------------------------------------------


def test_get_sweep_counts_trials_by_state(store: Store) -> None:
    new_sweep(store)
    for path in ([], [], [T.RUNNING], [T.RUNNING, T.COMPLETED], [T.RUNNING, T.PRUNED], [T.FAILED]):
        trial_id = new_trial(store, "sw")
        for state in path:
            store.set_trial_state(trial_id, state)
    new_trial(store, "other")
    counts = store.get_sweep("sw").trial_counts
    assert counts == {
        "PENDING": 2,
        "RUNNING": 1,
        "COMPLETED": 1,
        "PRUNED": 1,
        "FAILED": 1,
        "CANCELLED": 0,
    }
    assert store.get_sweep("other").trial_counts == {**ZERO_COUNTS, "PENDING": 1}


def test_list_sweeps_in_creation_order(store: Store) -> None:
    assert store.list_sweeps() == []
    new_sweep(store, "zeta")
    new_trial(store, "mid")
    new_sweep(store, "alpha")
    store.set_sweep_state("zeta", W.RUNNING)  # updating must not reorder
    sweeps = store.list_sweeps()
    assert [s.name for s in sweeps] == ["zeta", "mid", "alpha"]
    assert [len(s.stages) for s in sweeps] == [2, 0, 2]
    assert [s.trial_counts["PENDING"] for s in sweeps] == [0, 1, 0]
    assert sweeps == [store.get_sweep(s.name) for s in sweeps]


# --- trials of a sweep -------------------------------------------------------------------


def test_fail_running_trials_touches_only_unfinished_trials_of_that_sweep(store: Store) -> None:
    new_sweep(store, "a")
    pending = new_trial(store, "a")
    running = new_trial(store, "a")
    store.set_trial_state(running, T.RUNNING)
    done = {state: drive(store, [T.RUNNING, state]) for state in (T.COMPLETED, T.PRUNED)}
    failed = new_trial(store, "a")
    store.set_trial_state(failed, T.FAILED, error="earlier error")
    other = new_trial(store, "b")
    store.set_trial_state(other, T.RUNNING)
    untouched = {i: store.get_trial(i) for i in (*done.values(), failed, other)}

    assert store.fail_running_trials("a", "orchestrator crashed") == [pending, running]
    for trial_id in (pending, running):
        trial = store.get_trial(trial_id)
        assert (trial.state, trial.error) == (T.FAILED, "orchestrator crashed")
        assert trial.finished_at is not None
    assert store.get_trial(running).started_at is not None
    assert {i: store.get_trial(i) for i in untouched} == untouched
    assert store.fail_running_trials("a", "again") == []
    assert store.fail_running_trials("unknown", "x") == []


def test_optuna_trial_number_is_unique_per_sweep(store: Store) -> None:
    first = store.create_trial("a", SPEC, {}, {}, optuna_trial_number=0)
    store.create_trial("a", SPEC, {}, {}, stage="fine", optuna_trial_number=1)
    store.create_trial("b", SPEC, {}, {}, optuna_trial_number=0)  # other sweep: fine
    new_trial(store, "a")
    new_trial(store, "a")  # NULLs never collide
    before = store.count_rows()
    with pytest.raises(StoreError, match=f"sweep 'a' .* already has trial {first} .* number 0"):
        store.create_trial("a", SPEC, {}, {}, optuna_trial_number=0)
    assert store.count_rows() == before

    record = store.trial_by_optuna_number("a", 1)
    assert record is not None and (record.number, record.stage) == (1, "fine")
    assert record.to_dict()["optuna_trial_number"] == 1
    assert store.get_trial(first).optuna_trial_number == 0
    assert store.trial_by_optuna_number("a", 7) is None
    assert store.trial_by_optuna_number("nope", 0) is None

    # The database enforces it too, for writers that bypass the Store's check.
    with Session(store._engine) as session, pytest.raises(IntegrityError):
        row = store.get_trial(first)
        session.add(
            Trial(
                sweep_id=store.get_sweep("a").id,
                number=99,
                state=T.PENDING,
                params={},
                config={},
                optuna_trial_number=0,
                created_at=row.created_at + timedelta(seconds=1),
            )
        )
        session.commit()


def test_server_sweeps_keep_their_controller_and_failure_reason(store: Store) -> None:
    """`sweepctl serve` finds its own queued sweeps by controller; a FAILED sweep keeps
    why, and resuming it clears the reason."""
    store.create_sweep("mine", SPEC, STAGES, controller="server")
    new_sweep(store, "terminal")
    assert {s.name: s.controller for s in store.list_sweeps()} == {
        "mine": "server",
        "terminal": None,
    }
    store.set_sweep_state("mine", W.RUNNING)
    store.set_sweep_state("mine", W.FAILED, error="RuntimeError: out of disk")
    assert store.get_sweep("mine").error == "RuntimeError: out of disk"
    store.set_sweep_state("mine", W.RUNNING)
    record = store.get_sweep_by_id(store.get_sweep("mine").id)
    assert (record.name, record.state, record.error) == ("mine", W.RUNNING, None)
    with pytest.raises(StoreError, match="sweep 999999 not found"):
        store.get_sweep_by_id(999999)


def test_dashboard_views_aggregate_and_select_changed_trials(store: Store) -> None:
    """The reads behind the dashboard agree with the rows on both backends: stats by stage
    and state, completed objectives in number order, and 'changed after' by any stamp
    (creation, start, an evaluation, the end)."""
    sweep_id = store.create_sweep("views", SPEC, [("coarse", "ofat")])
    done = store.create_trial("views", SPEC, {"lr": 1e-5}, {}, stage="coarse")
    store.set_trial_state(done, T.RUNNING)
    store.set_trial_state(done, T.COMPLETED, objective=0.5)
    live = store.create_trial("views", SPEC, {"lr": 2e-5}, {}, stage="coarse")
    store.set_trial_state(live, T.RUNNING)
    cut = datetime.now(timezone.utc)
    assert store.trial_summaries(sweep_id, changed_after=cut) == []
    store.record_evaluation(live, EvaluationRecord(epoch=1.0, step=1, eval_loss=0.7))
    [changed] = store.trial_summaries(sweep_id, changed_after=cut)
    assert (changed.id, changed.evaluations, changed.last_epoch) == (live, 1, 1.0)
    assert changed.last_evaluation_at is not None and changed.last_evaluation_at > cut
    stats = store.sweep_stats(sweep_id)
    numbers = {t.id: t.number for t in store.trial_summaries(sweep_id)}
    assert stats.completed == [(numbers[done], done, 0.5)]
    assert stats.running == [numbers[live]]
    assert sorted((c.stage, c.state, c.trials) for c in stats.by_stage) == [
        ("coarse", T.COMPLETED, 1),
        ("coarse", T.RUNNING, 1),
    ]
    assert stats.started_at is not None and stats.started_at <= cut
