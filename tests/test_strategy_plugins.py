"""A stage strategy added from outside the package: defined and registered in this file
alone, then run through the real orchestrator, Optuna study and store."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, ClassVar, Literal

import pytest
from pydantic import ValidationError

from sweepctl.orchestrator.plan_size import planned_trials
from sweepctl.orchestrator.proposals import Proposal
from sweepctl.orchestrator.strategies import (
    STRATEGIES,
    FixedPlan,
    GridStrategy,
    StageContext,
    register,
    strategy_named,
)
from sweepctl.spec.base import FieldError, Scalar
from sweepctl.spec.errors import SpecError
from sweepctl.spec.stages import GridStage, StageSpecBase
from sweepctl.storage import TrialState
from tests.test_strategies import analytic_spec, run_sweep, stage_of


class FixedListStage(StageSpecBase):
    """`configs`: the configurations to run, each a partial override of the start point."""

    strategy: Literal["fixed_list"]
    configs: list[dict[str, Scalar]]

    def check_against(self, where: str, names: list[str], space: dict[str, Any]) -> None:
        for index, config in enumerate(self.configs):
            unknown = sorted(set(config) - set(names))
            if unknown:
                raise FieldError(where, f"configs.{index}: {unknown} are not searched here")


class FixedListStrategy(FixedPlan):
    """Run exactly the listed configurations, the way users rerun their best manual runs."""

    name: ClassVar[str] = "fixed_list"
    spec_model: ClassVar[type[StageSpecBase]] = FixedListStage

    def planned_points(self, ctx: StageContext) -> list[Proposal]:
        stage = ctx.stage_as(FixedListStage)
        return [Proposal({**ctx.start, **config}, "fixed_list") for config in stage.configs]


register(FixedListStrategy)

CONFIGS = [
    {"learning_rate": 1.0e-5, "weight_decay": 0.0},
    {"learning_rate": 3.0e-5, "weight_decay": 0.05},
    {"learning_rate": 5.0e-5, "weight_decay": 0.1},
]


def _plan(**stage: Any) -> list[dict[str, Any]]:
    return [{"name": "manual", "strategy": "fixed_list", "configs": CONFIGS, **stage}]


def test_a_registered_plugin_strategy_runs_exactly_its_listed_configurations(
    tmp_path: Path,
) -> None:
    spec = analytic_spec("plugin", _plan())
    _run, store = run_sweep(spec, tmp_path)
    trials = stage_of(store, "plugin", "manual")
    assert [t.state for t in trials] == [TrialState.COMPLETED] * len(CONFIGS)
    ran = sorted((t.params["learning_rate"], t.params["weight_decay"]) for t in trials)
    assert ran == sorted((c["learning_rate"], c["weight_decay"]) for c in CONFIGS)
    assert {t.params["warmup_steps"] for t in trials} == {100}  # the rest at the baseline
    stage = store.get_sweep("plugin").stages[0]
    assert (stage.strategy, stage.summary["finished"]) == ("fixed_list", len(CONFIGS))


def test_a_plugin_stage_is_counted_for_progress_and_feeds_later_stages(tmp_path: Path) -> None:
    grid = {"name": "after", "strategy": "grid", "parameters": ["warmup_steps"]}
    spec = analytic_spec("plugin2", [*_plan(), grid])
    assert planned_trials(spec, {}) == {"manual": len(CONFIGS), "after": 3}
    _run, store = run_sweep(spec, tmp_path)
    best = min(stage_of(store, "plugin2", "manual"), key=lambda t: t.objective)
    later = stage_of(store, "plugin2", "after")
    assert {t.params["learning_rate"] for t in later} == {best.params["learning_rate"]}


def test_a_plugin_stage_keeps_its_own_keys_and_rules() -> None:
    with pytest.raises(ValidationError, match="configs"):
        analytic_spec("bad", [{"name": "m", "strategy": "fixed_list"}])
    with pytest.raises(ValidationError, match="repeats"):  # an OFAT key is unknown here
        analytic_spec("bad", _plan(repeats=2))
    with pytest.raises(ValidationError, match="not searched here"):
        analytic_spec("bad", _plan(parameters=["warmup_steps"]))


def test_an_unregistered_strategy_is_a_spec_error_naming_the_known_ones() -> None:
    with pytest.raises(ValidationError) as raised:
        analytic_spec("bad", [{"name": "m", "strategy": "fixed_lis"}])
    message = str(raised.value)
    assert "expected one of" in message and "'fixed_list'" in message
    assert "did you mean 'fixed_list'" in message
    with pytest.raises(SpecError, match="not registered"):
        strategy_named("hill_climb")


def test_a_strategy_name_cannot_be_taken_twice() -> None:
    class Impostor(GridStrategy):
        name: ClassVar[str] = "fixed_list"
        spec_model: ClassVar[type[StageSpecBase]] = GridStage

    with pytest.raises(ValueError, match="already registered"):
        register(Impostor)
    assert STRATEGIES["fixed_list"] is FixedListStrategy


def test_no_module_outside_the_strategy_classes_asks_which_strategy_a_stage_has() -> None:
    repo = Path(__file__).resolve().parents[1]
    asks = re.compile(r"\bstrategy\s*(==|!=|in\s*[(\[{])")
    outside = [
        f"{path.relative_to(repo)}:{number}"
        for folder in ("cli", "spec", "storage", "workers", "orchestrator", "service")
        for path in sorted((repo / folder).rglob("*.py"))
        if "strategies" not in path.parts
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if asks.search(line)
    ]
    assert outside == []
