"""The quickstart's own plan through the CLI, with the tiny BERT in MiniLM's place.

Everything but the model is sweeps/quickstart.yaml as shipped: its demo data, search
space, OFAT screening, TPE over every parameter and the confirm stage. The packaged MiniLM
would take minutes (`make quickstart`, docs/benchmarks.md); the tiny BERT takes seconds and
exercises the same stages, the same store and the same output.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from sweepctl.cli import main
from sweepctl.stats import Interval
from sweepctl.storage import Store

REPO_ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = REPO_ROOT / "sweeps" / "quickstart.yaml"


def quickstart_with(model: Path) -> dict[str, Any]:
    spec = yaml.safe_load(QUICKSTART.read_text())
    spec["model"] = str(model)
    files = spec["dataset"]["data_files"]
    spec["dataset"]["data_files"] = {k: str(QUICKSTART.parent / v) for k, v in files.items()}
    spec["tracking"] = {"wandb": {"mode": "disabled"}}
    return spec


@pytest.fixture(scope="module")
def quickstart_run(
    tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """One launch shared by the tests below: its output, store URL and confirm summary."""
    folder = tmp_path_factory.mktemp("quickstart")
    spec = quickstart_with(tiny_model_dir)
    path = folder / "quickstart.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    db = f"sqlite:///{folder / 'sweeps.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SWEEPCTL_HOME", str(folder / "home"))
        patch.setenv("HF_HUB_OFFLINE", "1")
        from contextlib import redirect_stdout
        from io import StringIO

        out = StringIO()
        with redirect_stdout(out):
            code = main(["launch", str(path), "--db", db, "--backend", "inline"])
    store = Store(db)
    stages = {stage.name: stage for stage in store.sweep_row("quickstart").stages}
    return {
        "code": code,
        "out": out.getvalue(),
        "db": db,
        "store": store,
        "confirm": (stages["confirm"].summary or {})["confirm"],
        "home": folder / "home",
    }


def test_the_quickstart_plan_runs_every_stage_and_exits_0(quickstart_run: dict[str, Any]) -> None:
    assert quickstart_run["code"] == 0, quickstart_run["out"][-2000:]
    stages = quickstart_run["store"].sweep_row("quickstart").stages
    assert [(s.name, s.strategy, s.state.name) for s in stages] == [
        ("screen", "ofat", "COMPLETED"),
        ("bayes", "bayes", "COMPLETED"),
        ("confirm", "confirm", "COMPLETED"),
    ]


def test_the_last_line_names_the_confirmed_winner_with_its_interval_or_the_tie(
    quickstart_run: dict[str, Any],
) -> None:
    from sweepctl.orchestrator.confirmed import mean_ci

    confirm = quickstart_run["confirm"]
    lines = [line for line in quickstart_run["out"].splitlines() if line.strip()]
    last = lines[-1]
    if confirm["tied"]:
        assert "the top configurations cannot be told apart" in last, last
    else:
        assert "confirmed best (stage confirm, pick mean)" in last, last
    assert f"f1 {mean_ci(confirm['winner'])}" in last, last
    assert Interval.from_dict(confirm["winner"]["interval"]).n == 3


def test_the_confirm_stage_reports_each_configuration_over_three_seeds(
    quickstart_run: dict[str, Any],
) -> None:
    confirm = quickstart_run["confirm"]
    rows = confirm["configurations"]
    assert 1 <= len(rows) <= 2 and all(row["n"] == 3 for row in rows)
    for row in [*rows, *([confirm["baseline"]] if confirm["baseline"] else [])]:
        interval = Interval.from_dict(row["interval"])
        assert interval.n == 3 and interval.method == "t"
        assert interval.low <= interval.estimate <= interval.high
    assert "Confirmed configurations, stage confirm" in quickstart_run["out"]


def test_the_export_carries_the_confirmed_interval_and_every_trial_its_own(
    quickstart_run: dict[str, Any], tmp_path: Path
) -> None:
    db = quickstart_run["db"]
    out = tmp_path / "best.json"
    command = ["export", "quickstart", "--format", "json", "-o", str(out), "--db", db]
    assert main(command) == 0
    exported = json.loads(out.read_text())["confirmed"]
    confirm = quickstart_run["confirm"]
    assert exported["winner"] is True and exported["stage"] == "confirm"
    assert exported["interval"] == confirm["winner"]["interval"]
    assert exported["tied"] == confirm["tied"]
    trials = [t for t in quickstart_run["store"].list_trials("quickstart") if t.metrics]
    assert trials and all("objective_interval" in t.metrics for t in trials)
    for trial in trials:
        interval = Interval.from_dict(trial.metrics["objective_interval"])
        assert interval.low <= trial.objective <= interval.high


def test_the_dashboard_shows_the_quickstart_s_confirmed_mean_and_interval(
    quickstart_run: dict[str, Any], tmp_path: Path
) -> None:
    from playwright.sync_api import expect, sync_playwright

    from sweepctl.orchestrator.confirmed import mean_ci
    from tests.service_process import running_server
    from tests.test_dashboard_browser import CHROMIUM, CHROMIUM_ARGS, WAIT_MS, _require_chromium

    _require_chromium()
    confirm = quickstart_run["confirm"]
    sweep_id = quickstart_run["store"].get_sweep("quickstart").id
    with running_server(tmp_path, quickstart_run["db"]) as live, sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            expect.set_options(timeout=WAIT_MS)
            page = chromium.new_page()
            page.goto(f"{live.url}/sweeps/{sweep_id}")
            expect(page.locator("#confirmed-winner")).to_contain_text(mean_ci(confirm["winner"]))
            cells = page.locator("#confirmed-table tbody td.interval")
            expect(cells.first).to_contain_text("±")
            table = page.locator("#confirmed-table").inner_text()
            missing = [mean_ci(r) for r in confirm["configurations"] if mean_ci(r) not in table]
            assert not missing, (missing, table)
            if confirm["tied"]:
                expect(page.locator("#confirmed-ties")).to_contain_text("cannot be told apart")
        finally:
            chromium.close()
