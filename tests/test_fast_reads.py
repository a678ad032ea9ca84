"""`list`, `status`, `watch` and the live table of `launch` read aggregates, never a
sweep's evaluations: every SQL statement they send is logged (a `before_cursor_execute`
listener on every Engine) and run again to count the rows it returned.

The property is checked the way it can fail: the same views are read before and after the
sweep grows (three times the trials, twice the epochs each) and must fetch the same rows
with the same statements; `Store.list_trials`, the read they replaced, is logged as a
control and does fetch every evaluation. The aggregate views are also compared with the
same figures computed from full TrialRecords, on SQLite and PostgreSQL (their JSON paths
into the stored configs and specs differ).

Last, the import cost: the commands that only look run in a subprocess under
`python -X importtime`, which lists every module they imported; none may pull in torch,
transformers, Ray or datasets, nor Alembic and Optuna, which only writers need.
"""

from __future__ import annotations

import io
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from alembic import command as alembic_command
from rich.console import Console, RenderableType
from sqlalchemy import Engine, event

from sweepctl.cli import main
from sweepctl.orchestrator.sweep_report import (
    objective_of,
    pruning_savings,
    status_renderables,
    sweeps_table,
    trials_table,
)
from sweepctl.spec.models import OBJECTIVE_METRICS, ObjectiveSpec
from sweepctl.storage import (
    EvaluationRecord,
    FailureKind,
    Store,
    StoreError,
    SweepState,
    TrialRecord,
    migrate,
)
from sweepctl.storage import TrialState as S
from sweepctl.storage.engine import create_store_engine
from sweepctl.storage.revisions import linear_head_revision

pytest_plugins = ["tests.storage_backends"]

EVALUATIONS_TABLE = "sweepctl_evaluations"
SPEC: dict[str, Any] = {
    "name": "big",
    "objective": {"metric": "loss", "direction": "minimize"},
    "stages": [{"name": "screen", "strategy": "ofat"}, {"name": "tpe", "strategy": "bayes"}],
}
EPOCHS = 8  # every trial's training.num_train_epochs
REPLAYED: dict[str, Any] = {"replay_record": {"lr": 1}}  # no TrainingArguments stored
OFAT = {"baseline": {"mean": 0.5, "std": 0.1, "n": 2}, "ranking": []}


@dataclass
class SqlLog:
    """Statements sent while the log was open, and the engine each went to."""

    statements: list[tuple[Engine, str, Any]] = field(default_factory=list)

    def select_rows(self) -> list[tuple[str, int]]:
        """(statement, rows it returns now) for each SELECT; run again after the log is
        closed, on a connection of the same engine, so the count is the real one."""
        counted = []
        for engine, statement, parameters in self.statements:
            if not statement.lstrip().upper().startswith("SELECT"):
                continue
            with engine.connect() as connection:
                rows = connection.exec_driver_sql(statement, parameters).fetchall()
            counted.append((statement, len(rows)))
        return counted

    def evaluation_rows(self) -> int:
        return sum(n for sql, n in self.select_rows() if EVALUATIONS_TABLE in sql)

    def total_rows(self) -> int:
        return sum(n for _, n in self.select_rows())


@contextmanager
def sql_log() -> Iterator[SqlLog]:
    log = SqlLog()

    def record(conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        log.statements.append((conn.engine, statement, parameters))

    event.listen(Engine, "before_cursor_execute", record)
    try:
        yield log
    finally:
        event.remove(Engine, "before_cursor_execute", record)


def render(*renderables: RenderableType) -> str:
    console = Console(record=True, width=200, file=io.StringIO())
    for renderable in renderables:
        console.print(renderable)
    return console.export_text()


def add_trials(store: Store, count: int, evaluations: int, offset: int = 0) -> None:
    """A repeating mix: COMPLETED with every evaluation, PRUNED after 1 or 2, FAILED
    (two kinds), a replayed PRUNED trial, and one single trial outside the stages."""
    config = {"training": {"num_train_epochs": EPOCHS}}
    for i in range(offset, offset + count):
        kind = i % 6
        stage = "screen" if i % 2 else "tpe"
        trial_id = store.create_trial(
            "big", {}, {"lr": i}, REPLAYED if kind == 4 else config, stage
        )
        if kind == 5:
            store.set_trial_state(trial_id, S.FAILED, error="oom", failure_kind=FailureKind.OOM)
            continue
        store.set_trial_state(trial_id, S.RUNNING)
        runs = evaluations if kind in (0, 1) else 1 + i % 2
        for epoch in range(1, runs + 1):
            store.record_evaluation(trial_id, EvaluationRecord(epoch=epoch, step=epoch))
        final = {0: S.COMPLETED, 1: S.COMPLETED, 2: S.PRUNED, 3: S.FAILED, 4: S.PRUNED}[kind]
        store.set_trial_state(trial_id, final, objective=1.0 / (1 + i % 7))
    single = store.create_trial("big", {}, {"lr": -1}, config)  # a `sweepctl trial` run
    store.set_trial_state(single, S.RUNNING)


def new_sweep(store: Store) -> int:
    sweep_id = store.create_sweep("big", SPEC, [("screen", "ofat"), ("tpe", "bayes")])
    store.set_sweep_state("big", SweepState.RUNNING)
    store.set_stage_state("big", "screen", SweepState.RUNNING)
    store.set_stage_state("big", "screen", SweepState.COMPLETED, summary={"ofat": OFAT})
    return sweep_id


def views(store: Store) -> str:
    """What list, status, one watch refresh and one live-table refresh read."""
    status = status_renderables(store, "big")
    live = trials_table(store, "big", limit=5)
    watch = [trials_table(store, "big", limit=7), store.sweep_row("big").state]
    return render(sweeps_table(store), *status, live, watch[0])


def reads(store: Store) -> tuple[int, int, int]:
    """(statements, rows fetched, evaluation rows fetched) of `views`."""
    with sql_log() as log:
        views(store)
    return len(log.statements), log.total_rows(), log.evaluation_rows()


# --- the property: reads do not grow with trials x epochs -----------------------------


def test_views_read_the_same_rows_after_the_sweep_triples(store: Store) -> None:
    new_sweep(store)
    add_trials(store, 12, evaluations=3)
    stored = store.count_rows()[EVALUATIONS_TABLE]
    before = reads(store)
    add_trials(store, 24, evaluations=6, offset=12)  # 36 trials, up to 6 epochs each
    assert store.count_rows()[EVALUATIONS_TABLE] > 3 * stored
    assert reads(store) == before


def test_no_statement_reads_evaluations_without_aggregating(store: Store) -> None:
    new_sweep(store)
    add_trials(store, 12, evaluations=4)
    with sql_log() as log:
        views(store)
    touching = [sql for _, sql, _ in log.statements if EVALUATIONS_TABLE in sql]
    assert touching  # the counts do come from the evaluations table ...
    for sql in touching:  # ... always as count(*) per trial, never a row's columns
        assert re.search(r"GROUP BY\s+sweepctl_evaluations\.trial_id", sql), sql
        assert f"{EVALUATIONS_TABLE}.eval_loss" not in sql and "count(" in sql.lower(), sql


def test_the_log_catches_a_read_of_every_evaluation(store: Store) -> None:
    """The control: the read the views replaced fetches trials x epochs rows."""
    new_sweep(store)
    add_trials(store, 12, evaluations=4)
    with sql_log() as log:
        store.list_trials("big")
    assert log.evaluation_rows() == store.count_rows()[EVALUATIONS_TABLE] > 12


def test_cli_list_status_and_watch_fetch_no_evaluation_rows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The commands as typed, each opening its own read-only Store, on a real file."""
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    with Store(url) as store:
        new_sweep(store)
        add_trials(store, 12, evaluations=EPOCHS)
        store.set_sweep_state("big", SweepState.CANCELLED)  # so `watch` ends at once
        stored = store.count_rows()[EVALUATIONS_TABLE]
    commands = (["list"], ["status", "big"], ["watch", "big", "--interval", "0"])
    for command in commands:
        with sql_log() as log:
            assert main([*command, "--db", url]) == 0
        aggregated = all(
            "GROUP BY" in sql for sql, _ in log.select_rows() if EVALUATIONS_TABLE in sql
        )
        # a count per trial shown, plus the (planned, run) epoch groups of the pruned trials
        assert aggregated and log.evaluation_rows() <= 13 + 3 < stored, command
    assert "pruning saved" in capsys.readouterr().out


# --- the aggregates agree with full records, on both backends -------------------------


def reference_savings(trials: list[TrialRecord]) -> tuple[float, float]:
    """The rule the status line always had, computed from every evaluation."""
    runs = [len(t.evaluations) for t in trials if t.state is S.COMPLETED]
    fallback = float(max(runs)) if runs else None
    saved = planned = 0.0
    for trial in trials:
        epochs = (trial.config.get("training") or {}).get("num_train_epochs")
        total = float(epochs) if isinstance(epochs, (int, float)) else fallback
        if trial.state is S.PRUNED and total is not None:
            planned += total
            saved += max(0.0, total - len(trial.evaluations))
    return saved, planned


def test_aggregates_match_the_full_records(store: Store) -> None:
    sweep_id = new_sweep(store)
    add_trials(store, 18, evaluations=4)
    trials = store.list_trials("big")
    stats = store.epoch_stats(sweep_id)
    completed = [t for t in trials if t.state is S.COMPLETED]
    assert stats.longest_completed == max(len(t.evaluations) for t in completed) == 4
    assert pruning_savings(stats) == reference_savings(trials)
    kinds = Counter((t.stage, t.failure_kind) for t in trials if t.failure_kind)
    found = store.failure_kinds(sweep_id)
    assert {(s, k): n for s, by in found.items() for k, n in by.items()} == dict(kinds)
    ranked = sorted(completed, key=lambda t: (t.objective, t.number))[:3]  # minimised
    assert [t.id for t in store.ranked_trials(sweep_id, False, 3)] == [t.id for t in ranked]
    planned = store.planned_epochs([t.id for t in trials])
    assert planned == {t.id: t.config.get("training", {}).get("num_train_epochs") for t in trials}
    assert [t.number for t in store.last_trials(sweep_id, 4)] == [t.number for t in trials[-4:]]
    low, high = store.best_objectives()[sweep_id]
    assert (low, high) == (min(t.objective for t in completed), max(t.objective for t in completed))
    assert store.sweep_objectives() == {sweep_id: SPEC["objective"]}


def test_status_and_tables_print_the_aggregates(store: Store) -> None:
    new_sweep(store)
    add_trials(store, 18, evaluations=4)
    text = render(*status_renderables(store, "big"), trials_table(store, "big", limit=3))
    assert "objective loss (minimize)" in text
    assert "3 COMPLETED, 6 FAILED, failed: 3 error, 3 oom" in text  # screen: the odd i
    assert "3 COMPLETED, 6 PRUNED" in text  # tpe: the even i
    assert "(single trials)" in text and "1 RUNNING" in text
    saved, planned = reference_savings(store.list_trials("big"))
    assert f"pruning saved {saved:g} trial-epochs ({100 * saved / planned:.1f}%" in text
    assert "best so far: trial 7 (stage tpe, #6) loss 0.1429  lr=6" in text  # #13 ties later
    rows = [line for line in text.splitlines() if "lr=" in line and "│" in line]
    assert "lr=-1" in rows[-1] and "0/8" in rows[-1] and "RUNNING" in rows[-1]
    assert "1/4" in rows[-3] and "lr=16" in rows[-3]  # replayed: its budget is the longest run


def test_the_light_objective_reads_a_spec_as_objectivespec_does() -> None:
    """`objective_of` skips pydantic; its defaults and direction rule must not drift."""
    assert objective_of({}) == objective_of({"objective": None})
    for metric in (*OBJECTIVE_METRICS, None):
        for direction in ("maximize", "minimize", None):
            section = {k: v for k, v in (("metric", metric), ("direction", direction)) if v}
            light = objective_of({"objective": section})
            full = ObjectiveSpec.model_validate(section)
            assert (light.metric, light.maximize) == (full.metric, full.maximize), section


# --- import cost ----------------------------------------------------------------------

BANNED = ("torch", "transformers", "ray", "datasets", "alembic", "optuna")


def imported(argv: list[str], cwd: Path) -> set[str]:
    """Top-level packages a `python -m sweepctl ...` run imported, from -X importtime."""
    run = [sys.executable, "-X", "importtime", "-m", "sweepctl", *argv]
    result = subprocess.run(run, cwd=cwd, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = [line for line in result.stderr.splitlines() if line.startswith("import time:")]
    return {line.rsplit("|", 1)[1].strip().split(".")[0] for line in lines[1:]}


def test_read_only_commands_import_nothing_heavy(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'imports.db'}"
    with Store(url) as store:
        new_sweep(store)
        add_trials(store, 6, evaluations=2)
        store.set_sweep_state("big", SweepState.CANCELLED)
    commands = (["--help"], ["list"], ["status", "big"], ["watch", "big"], ["show", "1"])
    for argv in commands:
        db = [] if argv == ["--help"] else ["--db", url]
        loaded = imported([*argv, *db], tmp_path)
        assert "sqlalchemy" in loaded or argv == ["--help"]  # the log is the real one
        assert not loaded & set(BANNED), (argv, sorted(loaded & set(BANNED)))


def test_the_head_revision_without_alembic_is_alembics() -> None:
    assert linear_head_revision() == migrate.head_revision() is not None


def test_a_read_only_store_behind_the_head_is_still_refused(tmp_path: Path) -> None:
    """The fast schema check only ever says yes; a store at 0001 gets Alembic's answer."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = create_store_engine(url)
    try:
        with engine.begin() as connection:
            alembic_command.upgrade(migrate.alembic_config(connection), "0001")
    finally:
        engine.dispose()
    with pytest.raises(StoreError, match="is at schema 0001, this sweepctl needs 0006"):
        Store(url, read_only=True)
    Store(url).close()  # a writer upgrades it; then the fast check accepts it
    Store(url, read_only=True).close()
