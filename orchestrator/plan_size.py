"""How many trials each stage of a sweep will run, for progress bars (`done / planned`).

Fixed stages (OFAT, grid) are counted by building the very proposal lists the orchestrator
enqueues, sampled ones by their budget; a stage whose parameters come from a ranking
(`{top: k, from: screen}`) can only be counted once that ranking exists, so it is None
until then.
"""

from __future__ import annotations

from typing import Any

from sweepctl.orchestrator.proposals import Ranking
from sweepctl.orchestrator.strategies import STRATEGIES, StageContext, planned_count
from sweepctl.spec.baseline import baseline
from sweepctl.spec.models import SweepSpec
from sweepctl.spec.stages import StageSpecBase, TopParameters


def planned_trials(
    spec: SweepSpec, summaries: dict[str, dict[str, Any] | None]
) -> dict[str, int | None]:
    """Stage name -> planned trial count; `summaries` are the stored stage summaries."""
    base = baseline(spec) if spec.stages else {}
    rankings = _rankings(spec, summaries)
    return {
        stage.name: _planned(spec, stage, base, rankings, summaries.get(stage.name) or {})
        for stage in spec.stages
    }


def _planned(
    spec: SweepSpec,
    stage: StageSpecBase,
    base: dict[str, Any],
    rankings: dict[str, Ranking],
    record: dict[str, Any],
) -> int | None:
    """A sampled stage's budget is known from the start; a fixed plan over parameters that
    wait for a ranking that does not exist yet is None until it does. A plan made from
    earlier results (confirm) is counted from what its summary kept of it."""
    strategy = STRATEGIES[stage.strategy]()
    if isinstance(stage.parameters, TopParameters) and stage.parameters.from_stage not in rankings:
        return strategy.trial_budget(StageContext(spec, stage, [], base, record=record))
    ctx = StageContext.of(spec, stage, rankings, base, record=record)
    return planned_count(strategy, ctx)


def _rankings(spec: SweepSpec, summaries: dict[str, dict[str, Any] | None]) -> dict[str, Ranking]:
    """The orchestrator's own choice of parameters, from the stored stage summaries."""
    rankings: dict[str, Ranking] = {}
    for stage in spec.stages:
        summary = summaries.get(stage.name)
        ranking = STRATEGIES[stage.strategy]().ranking_of(summary) if summary else None
        if ranking is not None:
            rankings[stage.name] = ranking
    return rankings
