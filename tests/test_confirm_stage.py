"""The confirm stage: the sweep's top configurations rerun with more seeds, through the real
orchestrator, Optuna study and store (InlineBackend), on the analytic landscape
(tests/analytic.py, whose seed noise is the same for every configuration) and on a noisy
one with a known truth (tests/noisy_analytic.py)."""

from __future__ import annotations

import copy
import json
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml
from pydantic import ValidationError
from rich.console import Console

from sweepctl.cli import main
from sweepctl.orchestrator.backends import InlineBackend
from sweepctl.orchestrator.confirmed import mean_ci
from sweepctl.orchestrator.export import export_payload, export_spec
from sweepctl.orchestrator.plan_size import planned_trials
from sweepctl.orchestrator.search import REPEAT_ATTR
from sweepctl.orchestrator.strategies import ConfirmStrategy, StageContext
from sweepctl.orchestrator.strategies.confirm import SeedRun, confirm_summary
from sweepctl.orchestrator.sweep import SweepRun, launch
from sweepctl.orchestrator.sweep_report import status_renderables
from sweepctl.service.overview import sweep_overview
from sweepctl.spec.baseline import baseline
from sweepctl.spec.models import ObjectiveSpec, SweepSpec, spec_to_dict
from sweepctl.spec.stages import ConfirmStage
from sweepctl.stats import t_interval
from sweepctl.storage import Store, SweepState, TrialState
from tests import noisy_analytic
from tests.analytic import loss
from tests.test_strategies import ANALYTIC, analytic_spec, run_sweep, stage_of
from tests.test_sweep_lifecycle import start_launch

NOISY = "python:tests.noisy_analytic:run"
SCREEN = {"name": "screen", "strategy": "ofat"}


def confirm(**keys: Any) -> dict[str, Any]:
    return {"name": "confirm", "strategy": "confirm", **keys}


def summary_of(store: Store, sweep: str, stage: str = "confirm") -> dict[str, Any]:
    return next(s.summary for s in store.get_sweep(sweep).stages if s.name == stage)


def trainings(store: Store, url: str, sweep: str) -> Counter[tuple[str, Any, int]]:
    """(stage, params, repeat) of every stored run that completed: store rows are
    trainings, and the repeat (the seed offset) is in the Optuna trial's attrs."""
    study = optuna.load_study(study_name=sweep, storage=url)
    repeats = {t.number: int(t.user_attrs.get(REPEAT_ATTR) or 0) for t in study.get_trials()}
    return Counter(
        (t.stage, tuple(sorted(t.params.items())), repeats[t.optuna_trial_number])
        for t in store.list_trials(sweep)
        if t.state is TrialState.COMPLETED
    )


def screen_ranking(store: Store, sweep: str) -> list[dict[str, Any]]:
    return [t.params for t in sorted(stage_of(store, sweep, "screen"), key=lambda t: t.objective)]


# --- the spec --------------------------------------------------------------------------


def test_a_confirm_stage_has_its_defaults_and_only_its_own_keys() -> None:
    stage = analytic_spec("c", [SCREEN, confirm()]).stages[1]
    assert isinstance(stage, ConfirmStage)
    assert (stage.top, stage.seeds, stage.pick, stage.baseline) == (3, 5, "mean", True)
    for key, value in (("top", 0), ("seeds", 1), ("pick", "median"), ("repeats", 2)):
        with pytest.raises(ValidationError, match=rf"stages\.1\.{key}"):
            analytic_spec("c", [SCREEN, confirm(**{key: value})])


def test_a_confirm_stage_first_is_refused_on_one_line_naming_its_strategy(
    tmp_path: Path, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = spec_to_dict(analytic_spec("first", [SCREEN]))
    data["stages"] = [confirm()]
    path = tmp_path / "first.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    capsys.readouterr()
    assert main(["validate", str(path)]) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert lines == [
        f"sweepctl: error: {path}: stages.0.strategy: 'confirm' works on the results of "
        "earlier stages; it cannot be the first stage"
    ]


# --- what it runs ----------------------------------------------------------------------


def test_it_reruns_the_top_distinct_configurations_and_the_baseline_reusing_each_first_seed(
    tmp_path: Path,
) -> None:
    spec = analytic_spec("top2", [SCREEN, confirm(top=2, seeds=4)])
    run, store = run_sweep(spec, tmp_path)
    top = screen_ranking(store, "top2")[:2]
    base = baseline(spec)
    assert base not in top
    runs = trainings(store, run.db_url, "top2")
    confirmed = {key: n for key, n in runs.items() if key[0] == "confirm"}
    # repeat 0 of each is its OFAT run: 2 configurations and the baseline, 3 new seeds each
    expected = {("confirm", tuple(sorted(p.items())), r) for p in [*top, base] for r in (1, 2, 3)}
    assert set(confirmed) == expected and set(confirmed.values()) == {1}
    assert len(stage_of(store, "top2", "confirm")) == 2 * (4 - 1) + (4 - 1)
    summary = summary_of(store, "top2")
    assert summary["reused"] == 3 and summary["confirm_plan"]["configurations"] == top


def test_each_configuration_s_interval_is_the_t_interval_of_its_stored_seed_objectives(
    tmp_path: Path,
) -> None:
    spec = analytic_spec("stats", [SCREEN, confirm(top=2, seeds=4)])
    _run, store = run_sweep(spec, tmp_path)
    result = summary_of(store, "stats")["confirm"]
    for row in [*result["configurations"], result["baseline"]]:
        stored = [store.trial_by_optuna_number("stats", n) for n in row["trials"]]
        values = [t.objective for t in stored if t is not None]
        assert row["repeats"] == [0, 1, 2, 3] and len(values) == 4
        assert values == pytest.approx([loss(row["params"], r) for r in range(4)])
        assert row["interval"] == pytest.approx(t_interval(values).to_dict())
    winner = result["winner"]
    assert winner["params"]["learning_rate"] == 5.0e-5 and winner["verdict"] == "winner"
    # the analytic noise is the same for every configuration: each gap is exact, never a tie
    assert result["tied"] == [] and result["vs_baseline"]["distinguishable"]
    assert result["vs_baseline"]["mean_difference"] == pytest.approx(
        loss(winner["params"]) - loss(baseline(spec))
    )


def test_a_baseline_among_the_top_is_run_once_and_the_progress_total_follows_the_plan(
    tmp_path: Path,
) -> None:
    spec = analytic_spec("top3", [SCREEN, confirm(top=3, seeds=3)])
    assert planned_trials(spec, {})["confirm"] == (3 + 1) * 3  # before: the most it may run
    _run, store = run_sweep(spec, tmp_path)
    assert baseline(spec) in screen_ranking(store, "top3")[:3]
    assert len(stage_of(store, "top3", "confirm")) == 3 * (3 - 1)
    summaries = {s.name: s.summary for s in store.get_sweep("top3").stages}
    assert planned_trials(spec, summaries)["confirm"] == 3 * 3
    rows = summary_of(store, "top3")["confirm"]["configurations"]
    assert [row["is_baseline"] for row in rows].count(True) == 1


def test_a_resumed_confirm_stage_plans_what_its_summary_kept_not_the_history() -> None:
    spec = analytic_spec("kept", [SCREEN, confirm(top=2, seeds=3, baseline=False)])
    kept = [{"learning_rate": 1.0e-5, "weight_decay": 0.0, "warmup_steps": 0}]
    ctx = StageContext(
        spec,
        spec.stages[1],
        [],
        baseline(spec),
        record={"confirm_plan": {"configurations": kept, "baseline": None}},
    )
    points = ConfirmStrategy().planned_points(ctx)
    assert [(p.params, p.repeat) for p in points] == [(kept[0], 0), (kept[0], 1), (kept[0], 2)]
    assert ConfirmStrategy().planned_points(StageContext(spec, spec.stages[1], [], {})) == []


# --- what it picks ---------------------------------------------------------------------


def _runs(values: dict[str, list[float]]) -> dict[Any, list[SeedRun]]:
    return {
        (("config", name),): [SeedRun(r, v, 10 * i + r) for r, v in enumerate(found)]
        for i, (name, found) in enumerate(values.items())
    }


@pytest.mark.parametrize(
    ("metric", "pick", "winner"),
    [
        ("accuracy", "mean", "wide"),
        ("accuracy", "lower_bound", "tight"),  # highest CI low
        ("loss", "mean", "tight"),
        ("loss", "lower_bound", "tight"),  # lowest CI high
    ],
)
def test_pick_takes_the_best_mean_or_the_best_pessimistic_bound(
    metric: str, pick: str, winner: str
) -> None:
    from sweepctl.orchestrator.strategies.confirm import ConfirmPlan

    values = {"wide": [0.70, 0.90, 0.72, 0.90], "tight": [0.80, 0.80, 0.81, 0.79]}
    plan = ConfirmPlan([{"config": "wide"}, {"config": "tight"}], None)
    stage = ConfirmStage(name="c", strategy="confirm", pick=pick, seeds=4)
    summary = confirm_summary(plan, _runs(values), stage, ObjectiveSpec(metric=metric), {})
    assert summary["winner"]["params"] == {"config": winner}
    assert summary["tied"] == [{"config": "wide" if winner == "tight" else "tight"}]


def _noisy_spec(name: str, seed: int, stages: list[dict[str, Any]]) -> SweepSpec:
    spec = analytic_spec(name, stages)
    data = spec_to_dict(spec)
    data["training"] = {**data["training"], "learning_rate": 3.0e-5, "weight_decay": 0.0}
    data["training"]["seed"] = seed
    data["search_space"] = copy.deepcopy(noisy_analytic.SPACE)
    return SweepSpec.model_validate(data)


NOISY_STAGES = [
    {"name": "grid", "strategy": "grid"},
    confirm(top=3, seeds=4, baseline=False),
]


def best_single_trial(store: Store, name: str) -> dict[str, Any]:
    """What selection without a confirm stage would export: the best grid trial's values,
    one seed per configuration."""
    return min(stage_of(store, name, "grid"), key=lambda t: t.objective).params


def test_confirm_picks_the_true_best_more_often_than_the_best_single_trial(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'sweeps.db'}"
    store = Store(url)
    truth = dict(zip(("learning_rate", "weight_decay"), noisy_analytic.TRUE_BEST, strict=True))
    single = confirmed = ties = 0
    sweeps = 20
    for index in range(sweeps):
        name = f"noisy{index}"
        spec = _noisy_spec(name, 1000 * index, NOISY_STAGES)
        run = SweepRun(spec, store, InlineBackend(), url, str(tmp_path / "home"), NOISY)
        assert launch(run) is SweepState.COMPLETED
        single += best_single_trial(store, name) == truth
        result = summary_of(store, name)["confirm"]
        confirmed += result["winner"]["params"] == truth
        ties += bool(result["tied"])
    print(f"true best picked in {sweeps} sweeps: single seed {single}, confirm {confirmed} "
          f"({ties} with ties reported)")  # fmt: skip
    assert (single, confirmed) == (13, 17)  # fixed seeds: the same counts on every run
    assert confirmed > single


def test_ties_are_said_and_named_by_export_and_by_launch_s_last_line(
    tmp_path: Path, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = _noisy_spec("tie", 7, NOISY_STAGES)
    path = tmp_path / "tie.yaml"
    path.write_text(yaml.safe_dump(spec_to_dict(spec)))
    db = f"sqlite:///{tmp_path / 'sweeps.db'}"
    capsys.readouterr()
    command = ["launch", str(path), "--db", db, "--backend", "inline", "--runner", NOISY]
    assert main(command) == 0
    last = [line for line in capsys.readouterr().out.splitlines() if line.strip()][-1]
    store = Store(db)
    result = summary_of(store, "tie")["confirm"]
    assert result["tied"], "the noisy top three should not be separable with 4 seeds"
    named = [result["winner"]["params"], *result["tied"]]
    assert "cannot be told apart" in last
    assert all(f"learning_rate={p['learning_rate']:.4g}" in last for p in named), last
    assert f"(picked: learning_rate={result['winner']['params']['learning_rate']:.4g}" in last
    assert mean_ci(result["winner"]) in last, "the pick from a tie still shows its interval"
    text = export_payload(store, "tie", "yaml")
    assert text.startswith("# confirm stage 'confirm': the top configurations cannot be told")
    exported = yaml.safe_load(text)
    assert {k: exported["training"][k] for k in result["winner"]["params"]} == (
        result["winner"]["params"]
    )
    assert exported["training"]["seed"] == 7  # the spec's own seed, not a repeat's
    note = json.loads(export_payload(store, "tie", "json"))["confirmed"]
    assert note["winner"] and note["tied"] == result["tied"]


def test_export_status_and_the_api_answer_with_the_confirmed_pick(tmp_path: Path) -> None:
    spec = analytic_spec("shown", [SCREEN, confirm(top=2, seeds=3)])
    _run, store = run_sweep(spec, tmp_path)
    result = summary_of(store, "shown")["confirm"]
    exported = export_spec(store, "shown", top=2)
    assert [e["training"]["learning_rate"] for e in exported] == [
        row["params"]["learning_rate"] for row in result["configurations"]
    ]
    assert "over 3 seeds loss" in exported[0]["description"]
    console = Console(width=200, record=True)
    for renderable in status_renderables(store, "shown"):
        console.print(renderable)
    shown = console.export_text()
    assert "confirmed best (stage confirm, pick mean): learning_rate=5e-05" in shown
    assert "Confirmed configurations, stage confirm" in shown and "winner" in shown
    overview = sweep_overview(store, store.get_sweep("shown"))
    api = overview["confirmed"]
    assert api["winner"]["interval"] == result["winner"]["interval"]
    assert api["configurations"][0]["params"] == result["winner"]["params"]
    assert overview["best"]["params"] == result["winner"]["params"]


def test_without_a_confirm_stage_export_and_status_are_as_before(tmp_path: Path) -> None:
    _run, store = run_sweep(analytic_spec("plain", [SCREEN]), tmp_path)
    assert not export_payload(store, "plain", "yaml").startswith("#")
    assert "confirmed" not in json.loads(export_payload(store, "plain", "json"))
    assert sweep_overview(store, store.get_sweep("plain"))["confirmed"] is None


# --- crash and resume ------------------------------------------------------------------


def _wait_for_confirm_rows(url: str, count: int, process: Any) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert process.poll() is None, "the sweep ended before the test could kill it"
        with Store(url) as store:
            names = store.sweep_names()
            rows = stage_of(store, "crash", "confirm") if "crash" in names else []
            if sum(t.state is TrialState.COMPLETED for t in rows) >= count:
                return
        time.sleep(0.1)
    pytest.fail(f"fewer than {count} confirm trials completed in time")


def test_sigkill_during_confirm_then_resume_trains_no_seed_twice_and_keeps_the_plan(
    tmp_path: Path, home: Path
) -> None:
    spec = analytic_spec("crash", [SCREEN, confirm(top=2, seeds=4)])
    path = tmp_path / "crash.yaml"
    path.write_text(yaml.safe_dump(spec_to_dict(spec)))
    url = f"sqlite:///{tmp_path / 'sweeps.db'}"
    process = start_launch(path, url, home)
    _wait_for_confirm_rows(url, 3, process)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    store = Store(url)
    stage = store.get_sweep("crash").stages[1]
    assert stage.state is SweepState.RUNNING  # killed: nobody finished it
    plan = stage.summary["confirm_plan"]

    assert main(["resume", "crash", "--db", url, "--backend", "inline", "--runner", ANALYTIC]) == 0

    runs = trainings(store, url, "crash")
    assert set(runs.values()) == {1}  # no configuration and seed trained twice
    assert sum(n for key, n in runs.items() if key[0] == "confirm") == 2 * 3 + 3
    summary = summary_of(store, "crash")
    assert summary["confirm_plan"] == plan
    chosen = [row["params"] for row in summary["confirm"]["configurations"]]
    assert chosen == plan["configurations"]
    assert all(row["n"] == 4 for row in summary["confirm"]["configurations"])
    assert store.get_sweep("crash").state is SweepState.COMPLETED
    store.close()
