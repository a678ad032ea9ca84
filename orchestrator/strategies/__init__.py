"""Stage strategies as plugins: one class per file, and a registry from names to classes.

A new strategy is a class implementing `StageStrategy` (base.py) whose `spec_model` is a
`StageSpecBase` subclass with `strategy: Literal["<name>"]`; `register(MyStrategy)` adds
both, and specs may name it from then on. Nothing outside these classes asks which
strategy a stage has.
"""

from __future__ import annotations

from sweepctl.orchestrator.strategies.base import (
    Conclusion,
    FixedPlan,
    SampledPlan,
    StageContext,
    StageStrategy,
    planned_count,
)
from sweepctl.orchestrator.strategies.bayes import BayesStrategy
from sweepctl.orchestrator.strategies.confirm import ConfirmStrategy
from sweepctl.orchestrator.strategies.grid import GridStrategy
from sweepctl.orchestrator.strategies.ofat import OfatReport, OfatStrategy, ParameterImpact
from sweepctl.orchestrator.strategies.random_search import RandomStrategy
from sweepctl.spec.errors import SpecError
from sweepctl.spec.stages import register_stage_spec

STRATEGIES: dict[str, type[StageStrategy]] = {}


def register(strategy: type[StageStrategy]) -> type[StageStrategy]:
    """Make `strategy` available to specs; usable as a class decorator."""
    known = STRATEGIES.get(strategy.name)
    if known is not None and known is not strategy:
        raise ValueError(f"strategy {strategy.name!r} is already registered by {known.__name__}")
    register_stage_spec(strategy.spec_model)
    STRATEGIES[strategy.name] = strategy
    return strategy


def strategy_named(name: str) -> StageStrategy:
    """An instance of the registered strategy; a stored sweep naming a strategy this process
    never registered (a plugin) is a usage error, not a crash."""
    strategy = STRATEGIES.get(name)
    if strategy is None:
        raise SpecError(f"strategy {name!r} is not registered in this process")
    return strategy()


for _builtin in (OfatStrategy, GridStrategy, RandomStrategy, BayesStrategy, ConfirmStrategy):
    register(_builtin)

__all__ = [
    "STRATEGIES",
    "Conclusion",
    "ConfirmStrategy",
    "FixedPlan",
    "OfatReport",
    "ParameterImpact",
    "SampledPlan",
    "StageContext",
    "StageStrategy",
    "planned_count",
    "register",
    "strategy_named",
]
