"""What a stage hands the study: a Proposal, and which parameters a stage searches.

A proposal's `key` is what makes "every point runs exactly once" true: fixed points are
enqueued with it, and a resumed sweep skips the keys already finished.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from sweepctl.spec.models import SweepSpec
from sweepctl.spec.stages import StageSpecBase, TopParameters


@dataclass(frozen=True)
class Proposal:
    params: dict[str, Any]
    role: str  # baseline | ofat | grid | sampled (a retry of a sampler's pick) | a plugin's
    repeat: int = 0
    attempt: int = 1  # which try of this point (orchestrator.retries)
    retry_of: int | None = None  # the Optuna number of the try this one repeats
    batch_halvings: int = 0  # out-of-memory retries before this one (spec.batch)
    alone: bool = False  # a packed trial retried on a device of its own after an OOM
    after_oom: bool = False  # the try before this one ran out of memory

    @property
    def key(self) -> str:
        return json.dumps([self.role, self.params, self.repeat], sort_keys=True, default=str)


class Ranking(Protocol):
    """What a ranking stage (OFAT) concludes: `{top: k, from: <stage>}` reads `top(k)`."""

    def top(self, k: int) -> list[str]: ...


def stage_parameter_names(
    stage: StageSpecBase, spec: SweepSpec, rankings: Mapping[str, Ranking]
) -> list[str]:
    if stage.parameters == "all":
        return list(spec.search_space)
    if isinstance(stage.parameters, TopParameters):
        return rankings[stage.parameters.from_stage].top(stage.parameters.top)
    return list(stage.parameters)


def tie_pick_warning(stage: StageSpecBase, rankings: Mapping[str, Ranking]) -> str | None:
    """Why a `{top: k, from: S}` stage must say it did not pick by impact: S concluded
    that no parameter moved the objective (OfatReport.no_signal), so its top k are the
    first k of a tie, not the most impactful parameters. None for any other stage."""
    chosen = stage.parameters
    if not isinstance(chosen, TopParameters):
        return None
    ranking = rankings.get(chosen.from_stage)
    if ranking is None or not getattr(ranking, "no_signal", False):
        return None
    names = ", ".join(ranking.top(chosen.top))
    return (
        f"top {chosen.top} taken from stage {chosen.from_stage}, where no parameter moved the "
        f"objective: the parameters were not chosen by impact (searching {names})"
    )
