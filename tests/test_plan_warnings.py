"""A plan whose last searching stage pins parameters is valid, and `validate` says so."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from sweepctl.cli import main
from sweepctl.spec.models import SweepSpec
from sweepctl.spec.plan_warnings import plan_warnings

SPACE = {
    "learning_rate": {"type": "float", "low": 1e-5, "high": 1e-4, "log": True, "ofat": [1e-5]},
    "weight_decay": {"type": "float", "low": 0.0, "high": 0.1, "ofat": [0.0, 0.1]},
    "warmup_steps": {"type": "int", "low": 0, "high": 100, "ofat": [0, 100]},
}
SCREEN = {"name": "screen", "strategy": "ofat"}


def spec_with(*stages: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": "plan",
        "model": "replay",
        "dataset": {"path": "nmtlc", "name": "ted-zh-en", "text_fields": ["x"]},
        "objective": {"metric": "loss"},
        "training": {"learning_rate": 5e-5, "weight_decay": 0.01, "warmup_steps": 10},
        "search_space": SPACE,
        "stages": list(stages),
    }


def warnings_of(*stages: dict[str, Any]) -> list[str]:
    spec = SweepSpec.model_validate(spec_with(*stages))
    return plan_warnings(list(spec.stages), spec.search_space)


def bayes(parameters: Any) -> dict[str, Any]:
    return {"name": "bayes", "strategy": "bayes", "parameters": parameters, "n_trials": 5}


def test_a_last_stage_over_the_top_two_of_three_warns_that_one_stays_pinned() -> None:
    (line,) = warnings_of(SCREEN, bayes({"top": 2, "from": "screen"}))
    assert "'bayes' is the last stage that searches" in line
    assert "the 1 parameter(s) outside the top 2" in line
    assert "parameters: all" in line


def test_a_last_stage_over_a_named_subset_names_what_it_leaves_out() -> None:
    (line,) = warnings_of(SCREEN, bayes(["learning_rate"]))
    assert "weight_decay, warmup_steps" in line


def test_a_deliberate_one_parameter_sweep_without_a_screening_does_not_warn() -> None:
    grid = {"name": "grid", "strategy": "grid", "parameters": ["learning_rate"]}
    assert warnings_of(grid) == []
    assert warnings_of(bayes(["learning_rate"])) == []


@pytest.mark.parametrize(
    "last",
    [bayes("all"), bayes({"top": 3, "from": "screen"})],
    ids=["all", "top-k-covering-everything"],
)
def test_a_plan_that_releases_every_parameter_at_the_end_does_not_warn(
    last: dict[str, Any],
) -> None:
    grid = {"name": "grid", "strategy": "grid", "parameters": {"top": 1, "from": "screen"}}
    assert warnings_of(SCREEN, grid, last) == []


def test_validate_prints_the_warning_on_stderr_and_still_succeeds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(spec_with(SCREEN, bayes({"top": 1, "from": "screen"}))))
    assert main(["validate", str(path)]) == 0
    captured = capsys.readouterr()
    assert "ok" in captured.out
    assert captured.err.startswith("sweepctl: warning: stages: 'bayes'")


def test_a_confirm_stage_after_a_pinning_stage_does_not_hide_the_pinning() -> None:
    confirm = {"name": "confirm", "strategy": "confirm", "top": 2, "seeds": 2}
    (line,) = warnings_of(SCREEN, bayes({"top": 1, "from": "screen"}), confirm)
    assert "'bayes' is the last stage that searches" in line
