"""How many trials each stage of a sweep will run, for progress bars (`done / planned`).

Fixed stages (OFAT, grid) are counted by building the very proposal lists the orchestrator
enqueues; a stage whose parameters come from an OFAT ranking (`{top: k, from: screen}`)
can only be counted once that ranking exists, so it is None until then.
"""

from __future__ import annotations

from typing import Any

from sweepctl.orchestrator.search import baseline
from sweepctl.orchestrator.strategies import (
    OfatReport,
    grid_proposals,
    ofat_proposals,
    stage_parameter_names,
)
from sweepctl.spec.models import SweepSpec
from sweepctl.spec.plan import StageSpec, TopParameters


def planned_trials(
    spec: SweepSpec, summaries: dict[str, dict[str, Any] | None]
) -> dict[str, int | None]:
    """Stage name -> planned trial count; `summaries` are the stored stage summaries."""
    base = baseline(spec) if spec.stages else {}
    return {stage.name: _planned(spec, stage, base, summaries) for stage in spec.stages}


def _planned(
    spec: SweepSpec,
    stage: StageSpec,
    base: dict[str, Any],
    summaries: dict[str, dict[str, Any] | None],
) -> int | None:
    if stage.strategy in ("random", "bayes"):
        return stage.n_trials
    names = _names(spec, stage, summaries)
    if names is None:
        return None
    if stage.strategy == "ofat":
        return len(ofat_proposals(spec, stage, names, base))
    return len(grid_proposals(spec, stage, names, base))


def _names(
    spec: SweepSpec, stage: StageSpec, summaries: dict[str, dict[str, Any] | None]
) -> list[str] | None:
    """The orchestrator's own choice of parameters, from the stored OFAT reports."""
    reports = {
        name: OfatReport.from_dict(summary["ofat"])
        for name, summary in summaries.items()
        if summary and summary.get("ofat")
    }
    if isinstance(stage.parameters, TopParameters) and stage.parameters.from_stage not in reports:
        return None
    return stage_parameter_names(stage, spec, reports)
