"""Budgets (spec.overnight, orchestrator.budget): a sweep stops cleanly at its limit, says
which, and `resume --budget` goes on. Real runs: the CLI, the store, Ray for the trial
that is in flight when the wall clock runs out."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sweepctl.cli import main
from sweepctl.orchestrator.budget import BudgetUsage, budget_report, format_seconds
from sweepctl.spec.overnight import BudgetSpec
from sweepctl.storage import Store, SweepState, TrialState
from tests.failing_runner import RUNNER as FAILING
from tests.fault_helpers import ANALYTIC, analytic_grid_spec, finish, start_sweepctl


def _grid(tmp_path: Path, name: str, points: int, **extra: Any) -> tuple[Path, str]:
    path = analytic_grid_spec(tmp_path / f"{name}.yaml", name, points=points, **extra)
    return path, f"sqlite:///{tmp_path / 'store.db'}"


def test_a_sweep_whose_trials_all_fail_stops_after_max_failures_with_the_reason(
    tmp_path: Path, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, url = _grid(tmp_path, "broken", 6, budget={"max_failures": 3})
    command = ["launch", str(path), "--db", url, "--backend", "inline", "--runner", FAILING]
    assert main(command) == 1
    out = capsys.readouterr().out
    reason = "budget max_failures used up: 3 of 3 configurations in a row ended without a result"
    assert f"sweep broken: STOPPED: {reason}" in " ".join(out.split())
    assert "sweepctl resume broken --budget KEY=VALUE" in out
    with Store(url) as store:
        sweep = store.get_sweep("broken")
        trials = store.list_trials("broken")
    assert (sweep.state, sweep.error) == (SweepState.STOPPED, reason)
    assert [s.state for s in sweep.stages] == [SweepState.STOPPED]
    assert [(t.state, t.failure_kind) for t in trials] == [(TrialState.FAILED, "error")] * 3

    # resumed without a larger budget it stops again at once, training nothing more
    assert main(["resume", "broken", "--db", url, "--backend", "inline", "--runner", FAILING]) == 1
    with Store(url) as store:
        assert len(store.list_trials("broken")) == 3
        assert store.get_sweep("broken").state is SweepState.STOPPED


def test_status_shows_what_each_limit_has_used_and_what_is_left(
    tmp_path: Path, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    budget = {"max_failures": 2, "max_failures_total": 10, "max_wall_time": "2h"}
    path, url = _grid(tmp_path, "shown", 4, budget=budget)
    main(["launch", str(path), "--db", url, "--backend", "inline", "--runner", FAILING])
    capsys.readouterr()
    assert main(["status", "shown", "--db", url]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "2 of 2 configurations in a row ended without a result (0 left)" in text
    assert "2 of 10 configurations ended without a result (8 left)" in text
    assert "of 2h00m (" in text and "left)" in text


def test_a_success_resets_the_failures_in_a_row_but_not_the_total(
    tmp_path: Path, home: Path
) -> None:
    path, url = _grid(tmp_path, "mixed", 3)
    assert (
        main(["launch", str(path), "--db", url, "--backend", "inline", "--runner", ANALYTIC]) == 0
    )
    path2, _ = _grid(tmp_path, "mixed2", 3)
    main(["launch", str(path2), "--db", url, "--backend", "inline", "--runner", FAILING])
    with Store(url) as store:
        clean, broken = BudgetUsage.of(store, "mixed"), BudgetUsage.of(store, "mixed2")
    assert (clean.failures_in_a_row, clean.failures_total) == (0, 0)
    assert (broken.failures_in_a_row, broken.failures_total) == (3, 3)
    assert clean.trial_hours > 0 and clean.wall_seconds > 0
    report = budget_report(BudgetSpec(max_trial_hours=1.0), clean)
    assert report["exhausted"] is None
    assert report["limits"]["max_trial_hours"]["left"] == pytest.approx(1.0 - clean.trial_hours)


def test_a_wall_time_budget_stops_a_sweep_and_resume_with_a_larger_one_finishes_it(
    tmp_path: Path, home: Path
) -> None:
    path, url = _grid(
        tmp_path,
        "clock",
        6,
        budget={"max_wall_time": "4s"},
        resources={"max_concurrent_trials": 1},
    )
    process = start_sweepctl(["launch", str(path), "--db", url, "--runner", ANALYTIC], home, 1.0)
    code, out, err = finish(process, timeout=180)
    assert code == 1, err
    assert "STOPPED: budget max_wall_time used up: wall time" in " ".join(out.split())
    with Store(url) as store:
        sweep = store.get_sweep("clock")
        trials = store.list_trials("clock")
    assert sweep.state is SweepState.STOPPED and sweep.run_seconds >= 4.0
    states = [t.state for t in trials]
    assert TrialState.CANCELLED in states  # the trial in flight was stopped and recorded
    cancelled = next(t for t in trials if t.state is TrialState.CANCELLED)
    assert (cancelled.error or "").startswith("budget max_wall_time used up")
    assert states.count(TrialState.COMPLETED) < 6

    process = start_sweepctl(
        ["resume", "clock", "--db", url, "--runner", ANALYTIC, "--budget", "max_wall_time=10m"],
        home,
        0.05,
    )
    code, out, err = finish(process, timeout=180)
    assert code == 0, err
    with Store(url) as store:
        sweep = store.get_sweep("clock")
        completed = [t for t in store.list_trials("clock") if t.state is TrialState.COMPLETED]
    assert sweep.state is SweepState.COMPLETED and sweep.spec["budget"]["max_wall_time"] == 600
    assert len({json.dumps(t.params, sort_keys=True) for t in completed}) == 6


def test_a_bad_budget_on_resume_is_one_line_naming_the_key_and_changes_nothing(
    tmp_path: Path, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, url = _grid(tmp_path, "typo", 2, budget={"max_failures": 1})
    main(["launch", str(path), "--db", url, "--backend", "inline", "--runner", FAILING])
    capsys.readouterr()
    assert main(["resume", "typo", "--db", url, "--budget", "max_failure=3"]) == 2
    assert "budget.max_failure: unknown key; expected one of" in capsys.readouterr().err
    assert main(["resume", "typo", "--db", url, "--budget", "max_failures=0"]) == 2
    assert "budget.max_failures: Input should be greater than or equal to 1" in (
        capsys.readouterr().err
    )
    assert main(["resume", "typo", "--db", url, "--budget", "max_failures"]) == 2
    assert "--budget 'max_failures': expected KEY=VALUE" in capsys.readouterr().err
    with Store(url) as store:
        assert store.get_sweep("typo").spec["budget"]["max_failures"] == 1


def test_budget_keys_take_durations_and_refuse_nonsense() -> None:
    assert BudgetSpec.model_validate({"max_wall_time": "1h30m"}).max_wall_time == 5400
    assert not BudgetSpec().limited and BudgetSpec(max_failures=2).limited
    with pytest.raises(ValueError, match="duration"):
        BudgetSpec.model_validate({"max_wall_time": "soon"})
    assert [format_seconds(s) for s in (45, 725, 11220)] == ["45s", "12m05s", "3h07m"]
