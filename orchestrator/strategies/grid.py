"""A grid: every combination of the stage's parameters, once each."""

from __future__ import annotations

from typing import Any, ClassVar

from sweepctl.orchestrator.proposals import Proposal
from sweepctl.orchestrator.strategies.base import FixedPlan, StageContext
from sweepctl.spec.models import SweepSpec
from sweepctl.spec.stages import GridStage, StageSpecBase


class GridStrategy(FixedPlan):
    name: ClassVar[str] = "grid"
    spec_model: ClassVar[type[StageSpecBase]] = GridStage

    def planned_points(self, ctx: StageContext) -> list[Proposal]:
        values = ctx.stage_as(GridStage).values or {}
        return grid_proposals(ctx.spec, values, ctx.names, ctx.start)


def grid_proposals(
    spec: SweepSpec, values: dict[str, list[Any]], names: list[str], fixed: dict[str, Any]
) -> list[Proposal]:
    """Every combination once. A parameter without explicit values uses its baseline plus
    its ofat values; categorical ones default to all their choices."""
    axes: list[tuple[str, list[Any]]] = []
    for name in names:
        explicit = values.get(name)
        param = spec.search_space[name]
        if explicit is not None:
            axes.append((name, list(explicit)))
        elif param.type == "categorical":
            axes.append((name, list(param.choices)))
        else:
            axes.append((name, sorted({fixed[name], *param.ofat})))
    points: list[dict[str, Any]] = [dict(fixed)]
    for name, axis in axes:
        points = [{**point, name: value} for point in points for value in axis]
    return [Proposal(point, "grid") for point in points]
