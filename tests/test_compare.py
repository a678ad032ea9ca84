"""`sweepctl compare`, `/sweeps/{id}/compare` and orchestrator.comparison on real staged
sweeps (OFAT -> grid -> TPE -> confirm) through the real orchestrator, Optuna study and
SQLite store, on the analytic landscape scored as accuracy on 400 rows
(tests/scored_analytic.py: real validation predictions, so real Wilson intervals)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sweepctl.cli import main
from sweepctl.orchestrator.comparison import Comparison, Compute, compare_sweep, objective_text
from sweepctl.service.app import create_app
from sweepctl.service.settings import ServeSettings
from sweepctl.storage import Store, TrialState
from tests import scored_analytic
from tests.service_client import TOKEN, local_client
from tests.test_strategies import ANALYTIC, analytic_spec, run_sweep

SCORED = "python:tests.scored_analytic:run"
BASELINE = {"learning_rate": 2.0e-5, "weight_decay": 0.01, "warmup_steps": 100}
SCREEN = {"name": "screen", "strategy": "ofat"}
GRID = {
    "name": "grid",
    "strategy": "grid",
    "parameters": {"top": 2, "from": "screen"},
    "values": {"learning_rate": [3.0e-5, 5.0e-5], "weight_decay": [0.0, 0.05]},
}
TPE = {"name": "tpe", "strategy": "bayes", "sampler": "tpe", "n_trials": 5, "warm_start": True}
CONFIRM = {"name": "confirm", "strategy": "confirm", "top": 2, "seeds": 3}
EPOCHS = 4  # analytic_spec's num_train_epochs: one evaluation per epoch


@pytest.fixture(scope="module")
def staged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Store]]:
    """One four-stage sweep for every test here (about four seconds)."""
    tmp = tmp_path_factory.mktemp("compare")
    spec = analytic_spec("staged", [SCREEN, GRID, TPE, CONFIRM], objective={"metric": "accuracy"})
    run, store = run_sweep(spec, tmp, runner=SCORED)
    try:
        yield run.db_url, store
    finally:
        store.close()


def compared(url: str, store: Store, name: str = "staged") -> Comparison:
    return compare_sweep(store, store.get_sweep(name), url)


def stage_trainings(store: Store, name: str, stage: str) -> list[Any]:
    return [t for t in store.list_trials(name) if t.stage == stage]


def spent(trials: list[Any]) -> tuple[int, float]:
    return len(trials), float(EPOCHS * len(trials))


def test_the_rows_are_baseline_each_stage_s_best_and_the_confirmed_winner_in_plan_order(
    staged: tuple[str, Store],
) -> None:
    url, store = staged
    comparison = compared(url, store)
    assert [(r.kind, r.stages) for r in comparison.rows] == [
        ("baseline", ["screen"]),
        ("ofat", ["screen"]),
        ("grid", ["grid"]),
        ("bayes", ["tpe"]),
        ("confirmed", ["confirm"]),
    ]
    assert (comparison.metric, comparison.maximize) == ("accuracy", True)
    baseline, ofat, grid, bayes, confirmed = comparison.rows
    assert baseline.params == BASELINE and baseline.trained_in == "screen"
    assert baseline.objective == scored_analytic.accuracy(BASELINE)
    # the best move of one factor: learning rate 2e-5 -> 5e-5, everything else at baseline
    assert ofat.params == {**BASELINE, "learning_rate": 5.0e-5}
    grid_values = [t.objective for t in stage_trainings(store, "staged", "grid")]
    assert grid.objective == max(grid_values) and grid.trained_in == "grid"
    tpe_values = [t.objective for t in stage_trainings(store, "staged", "tpe")]
    assert bayes.objective == max(tpe_values) and bayes.trained_in == "tpe"
    assert confirmed.trial_id is not None and confirmed.stages == ["confirm"]


def test_single_trial_rows_carry_their_training_s_wilson_interval(
    staged: tuple[str, Store],
) -> None:
    url, store = staged
    for row in compared(url, store).rows[:4]:
        assert row.trial_id is not None
        stored = store.get_trial(row.trial_id)
        assert stored.state is TrialState.COMPLETED and stored.params == row.params
        assert row.objective == stored.objective
        assert row.interval == stored.metrics["objective_interval"]
        assert (row.interval_kind, row.interval["method"], row.interval["n"]) == (
            "evaluation",
            "wilson",
            400,
        )
        assert row.interval["low"] < row.objective < row.interval["high"]
        assert objective_text(row).startswith(f"{row.objective:.4f} (95% ")
        assert objective_text(row).endswith(", wilson, 400 rows)")


def test_the_confirmed_winner_shows_its_seed_mean_and_t_interval(
    staged: tuple[str, Store],
) -> None:
    url, store = staged
    confirmed = compared(url, store).row("confirmed")
    assert confirmed is not None
    summary = next(s.summary for s in store.get_sweep("staged").stages if s.name == "confirm")
    winner = summary["confirm"]["winner"]
    assert confirmed.params == winner["params"] and confirmed.interval == winner["interval"]
    assert (confirmed.interval_kind, confirmed.interval["method"]) == ("seeds", "t")
    assert confirmed.interval["n"] == 3 and confirmed.objective == winner["interval"]["estimate"]
    seeds = [scored_analytic.accuracy(winner["params"], r) for r in range(3)]
    assert confirmed.objective == pytest.approx(sum(seeds) / 3)
    assert "±" in objective_text(confirmed) and objective_text(confirmed).endswith(", n=3)")
    assert confirmed.notes == ["pick: mean over 3 seeds"]


def test_compute_counts_each_row_s_trainings_and_everything_spent_to_reach_it(
    staged: tuple[str, Store],
) -> None:
    url, store = staged
    comparison = compared(url, store)
    by_stage = {s: spent(stage_trainings(store, "staged", s)) for s in ("screen", "grid", "tpe")}
    by_stage["confirm"] = spent(stage_trainings(store, "staged", "confirm"))
    assert by_stage["screen"] == (7, 28.0)  # baseline + 2 values of each of 3 parameters
    # top 2 and the baseline with 3 seeds, the first seed of each answered by its earlier run
    assert by_stage["confirm"][0] == 3 * (3 - 1)
    baseline, ofat, grid, bayes, confirmed = comparison.rows
    assert (baseline.compute.trainings, baseline.compute.trial_epochs) == (1, float(EPOCHS))
    assert baseline.to_reach == baseline.compute
    trainings, epochs, wall = 0, 0.0, 0.0
    for row, stage in ((ofat, "screen"), (grid, "grid"), (bayes, "tpe"), (confirmed, "confirm")):
        assert (row.compute.trainings, row.compute.trial_epochs) == by_stage[stage], stage
        assert row.compute.wall_s is not None and row.compute.wall_s > 0.0
        trainings, epochs = trainings + by_stage[stage][0], epochs + by_stage[stage][1]
        wall += row.compute.wall_s
        assert (row.to_reach.trainings, row.to_reach.trial_epochs) == (trainings, epochs), stage
        assert row.to_reach.wall_s == pytest.approx(wall), stage
    assert comparison.total == confirmed.to_reach
    assert comparison.total.trainings == len(store.list_trials("staged"))


def test_a_grid_point_answered_by_an_earlier_run_is_that_run_s_training(tmp_path: Path) -> None:
    # weight decay 0.01 is the baseline's: (5e-5, 0.01) is OFAT's best move, reused by the grid
    grid = {**GRID, "values": {"learning_rate": [5.0e-5], "weight_decay": [0.0, 0.01]}}
    spec = analytic_spec("reused", [SCREEN, grid], objective={"metric": "accuracy"})
    run, store = run_sweep(spec, tmp_path, runner=SCORED)
    comparison = compared(run.db_url, store, "reused")
    assert [r.kind for r in comparison.rows] == ["baseline", "ofat", "grid"]
    ofat, row = comparison.rows[1], comparison.rows[2]
    assert row.params == ofat.params and row.trial_id == ofat.trial_id
    assert row.trained_in == "screen" and row.interval == ofat.interval
    assert row.notes == [f"answered by trial #{ofat.trial_number} (stage screen), not retrained"]
    assert (row.compute.trainings, row.to_reach.trainings) == (1, 8)  # only (5e-5, 0.0) trained


def test_kinds_the_plan_lacks_are_left_out_and_a_loss_objective_has_no_interval(
    tmp_path: Path,
) -> None:
    stages = [SCREEN, {"name": "explore", "strategy": "random", "n_trials": 2}]
    run, store = run_sweep(analytic_spec("plain", stages), tmp_path, runner=ANALYTIC)
    comparison = compared(run.db_url, store, "plain")
    assert [(r.kind, r.label) for r in comparison.rows] == [
        ("baseline", "baseline"),
        ("ofat", "best OFAT move"),
        ("bayes", "best Bayesian trial"),
    ]
    assert (comparison.metric, comparison.maximize) == ("loss", False)
    for row in comparison.rows:
        assert row.interval is None and row.interval_kind is None
        assert objective_text(row) == f"{row.objective:.4f} (no interval)"
    moves = [t for t in store.list_trials("plain") if t.stage == "screen" and t.params != BASELINE]
    assert comparison.rows[1].objective == min(t.objective for t in moves)


def test_a_degenerate_best_is_named_in_its_row(tmp_path: Path) -> None:
    """Every OFAT move of the learning rate collapses below 1.2e-5 onto the majority class."""
    learning_rate = {"type": "float", "low": 1.0e-6, "high": 5.0e-5, "log": True}
    space = {"learning_rate": {**learning_rate, "ofat": [1.0e-6, 1.1e-5]}}
    spec = analytic_spec("flat", [SCREEN], objective={"metric": "accuracy"}, search_space=space)
    run, store = run_sweep(spec, tmp_path, runner=SCORED)
    ofat = compared(run.db_url, store, "flat").row("ofat")
    assert ofat is not None and ofat.objective == scored_analytic.POSITIVE / scored_analytic.ROWS
    assert ofat.degenerate == "predicts only class 1 (pos) on 400 of 400 rows"


# --- the CLI ---------------------------------------------------------------------------


def test_compare_prints_the_table_and_json_with_the_same_rows(
    staged: tuple[str, Store], capsys: pytest.CaptureFixture[str]
) -> None:
    url, store = staged
    assert main(["compare", "staged", "--db", url]) == 0
    text = capsys.readouterr().out
    labels = ["baseline", "best OFAT move", "best grid point", "best Bayesian trial"]
    labels += ["confirmed winner", "accuracy (maximize)", "wilson, 400 rows", "sweep total"]
    for label in labels:
        assert label in text, label
    assert main(["compare", "staged", "--db", url, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data == json.loads(json.dumps(compared(url, store).to_dict()))
    assert [r["kind"] for r in data["rows"]] == ["baseline", "ofat", "grid", "bayes", "confirmed"]
    assert set(data["rows"][0]["compute"]) == {"trainings", "trial_epochs", "wall_s"}


def test_compare_of_an_unknown_sweep_is_one_line_and_exit_2(
    staged: tuple[str, Store], capsys: pytest.CaptureFixture[str]
) -> None:
    url, _store = staged
    assert main(["compare", "nope", "--db", url]) == 2
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("sweepctl: error: sweep 'nope' not found")
    assert captured.out == ""


# --- the API ---------------------------------------------------------------------------


def test_the_api_answers_the_comparison_and_404_for_an_unknown_sweep(
    staged: tuple[str, Store], tmp_path: Path
) -> None:
    url, store = staged
    settings = ServeSettings(db_url=url, home=str(tmp_path), run_controller=False, token=TOKEN)
    sweep_id = store.get_sweep("staged").id
    with local_client(create_app(settings)) as client:
        reply = client.get(f"/api/v1/sweeps/{sweep_id}/compare")
        missing = client.get("/api/v1/sweeps/9999/compare")
    assert reply.status_code == 200, reply.text
    assert reply.json() == json.loads(json.dumps(compared(url, store).to_dict()))
    assert missing.status_code == 404


def test_off_loopback_the_comparison_needs_the_token_like_every_read(
    staged: tuple[str, Store], tmp_path: Path
) -> None:
    url, store = staged
    settings = ServeSettings(
        db_url=url, home=str(tmp_path), run_controller=False, token=TOKEN, host="0.0.0.0"
    )
    path = f"/api/v1/sweeps/{store.get_sweep('staged').id}/compare"
    with local_client(create_app(settings), token=None) as anonymous:
        assert anonymous.get(path).status_code == 401
        assert anonymous.get(path, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200


def test_compute_adds_up_and_keeps_an_unknown_wall_time_unknown() -> None:
    assert Compute(1, 4.0, None) + Compute(2, 8.0, None) == Compute(3, 12.0, None)
    assert Compute(1, 4.0, 1.5) + Compute(2, 8.0, None) == Compute(3, 12.0, 1.5)
    assert (
        Compute(3, 12.0, 1.5).cell() == "3 / 12 / 1.5" and Compute(3, 12.0).cell() == "3 / 12 / -"
    )
