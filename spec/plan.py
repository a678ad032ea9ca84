"""The sweep plan part of the spec: `stages`, `resources` and `pruning`.

A plan is the users' manual method made explicit: OFAT screening, a coarse grid over the
most influential parameters, then a Bayesian stage, each over a subset of `search_space`.
The stages themselves are in sweepctl.spec.stages; cross-checks that need the search space
(parameter names, each strategy's own rules, `from:` naming an earlier ranking stage) run
in `check_plan`, called by SweepSpec.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from sweepctl.spec.base import FieldError, StrictModel
from sweepctl.spec.stages import StageSpec, StageSpecBase, TopParameters


class ResourcesSpec(StrictModel):
    """`heartbeat_interval`: how often a running trial beats into the store; after 3
    missed beats the orchestrator kills it as lost. `trial_timeout`: a trial older than
    this is stopped and ends FAILED/timeout with its evaluations kept. Both take seconds or
    a duration such as "90s", "30m", "2h", "1h30m". `oom_fallback`: a trial that runs out
    of memory is retried with half the per-device batch and twice the accumulation, the
    same effective batch (spec.batch), down to a batch of 1."""

    gpus_per_trial: float = Field(default=0.0, ge=0.0)
    cpus_per_trial: float = Field(default=1.0, gt=0.0)
    max_concurrent_trials: int = Field(default=1, ge=1)
    heartbeat_interval: float = Field(default=30.0, ge=0.1, le=3600.0)
    trial_timeout: float | None = Field(default=None, gt=0.0)
    oom_fallback: bool = True

    @field_validator("heartbeat_interval", "trial_timeout", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        return parse_duration(value) if isinstance(value, str) else value


_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(h|m|s|ms)")
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def parse_duration(text: str) -> float:
    """Seconds from "2h", "30m", "1h30m", "90s", "250ms" or a bare number."""
    cleaned = text.strip().lower()
    try:
        return float(cleaned)
    except ValueError:
        pass
    parts = _DURATION.findall(cleaned)
    if not parts or _DURATION.sub("", cleaned).strip():
        raise ValueError(f"expected seconds or a duration like '90s', '30m', '2h' (got {text!r})")
    return sum(float(number) * _UNIT_SECONDS[unit] for number, unit in parts)


RetryableKind = Literal["worker_lost", "timeout", "oom"]


class RetriesSpec(StrictModel):
    """A configuration whose trial failed for a reason outside it (its worker died or
    hung, it ran out of memory, it timed out) is tried again as a new, visible attempt,
    up to `max_attempts` tries in all. A NaN loss, a bad input or the user's exception
    would fail the same way again and is never retried, so those kinds are not allowed."""

    max_attempts: int = Field(default=2, ge=1, le=10)
    on: list[RetryableKind] = ["worker_lost", "timeout", "oom"]


class PruningSpec(StrictModel):
    """`patience` wraps the pruner in Optuna's PatientPruner: a trial whose objective
    improved within the last `patience` evaluations is never pruned. Why: some of the best
    configurations start slowly and keep improving long after fast starters flatten out;
    rung comparisons alone stop them early (docs/benchmarks.md, strategy efficiency).
    `min_trials` is MedianPruner's n_min_trials: a step is judged only when at least that
    many completed trials reported it, so a long run late in training is not pruned for
    being behind the one or two other runs that got that far."""

    algorithm: Literal["none", "median", "asha", "hyperband"] = "none"
    min_epochs: int = Field(default=1, ge=1)
    reduction_factor: int = Field(default=3, ge=2)
    patience: int | None = Field(default=None, ge=1)
    min_trials: int = Field(default=1, ge=1)

    @model_validator(mode="after")
    def _keys_need_their_pruner(self) -> PruningSpec:
        if self.patience is not None and self.algorithm == "none":
            raise ValueError("patience applies to a pruner: set algorithm too")
        if self.min_trials != 1 and self.algorithm != "median":
            raise ValueError("min_trials applies to algorithm 'median' only")
        return self


def check_plan(stages: list[StageSpecBase], search_space: dict[str, Any]) -> None:
    """Stage references that a single stage cannot check on its own."""
    seen: dict[str, StageSpecBase] = {}
    for index, stage in enumerate(stages):
        where = f"{index}"
        if stage.name in seen:
            raise FieldError(where, f"duplicate stage name '{stage.name}'")
        if stage.needs_history and not seen:
            raise FieldError(
                f"{where}.strategy",
                f"'{stage.strategy}' works on the results of earlier stages; "
                "it cannot be the first stage",
            )
        names = _stage_parameter_names(stage, where, search_space, seen)
        stage.check_against(where, names, search_space)
        seen[stage.name] = stage


def _stage_parameter_names(
    stage: StageSpecBase, where: str, space: dict[str, Any], earlier: dict[str, StageSpecBase]
) -> list[str]:
    if stage.parameters == "all":
        if not space:
            raise FieldError(where, "parameters: all, but search_space is empty")
        return list(space)
    if isinstance(stage.parameters, TopParameters):
        source = earlier.get(stage.parameters.from_stage)
        if source is None or not source.ranks_parameters:
            name = stage.parameters.from_stage
            raise FieldError(where, f"parameters.from: '{name}' is not an earlier OFAT stage")
        screened = [n for n in space if space[n].ofat]
        if stage.parameters.top > len(screened):
            raise FieldError(
                where,
                f"parameters.top: {stage.parameters.top}, but OFAT stage "
                f"'{stage.parameters.from_stage}' ranks only {len(screened)} parameter(s)",
            )
        return screened
    unknown = [n for n in stage.parameters if n not in space]
    if unknown:
        raise FieldError(where, f"parameters {unknown} are not in search_space")
    return list(stage.parameters)


__all__ = [
    "PruningSpec",
    "ResourcesSpec",
    "RetriesSpec",
    "StageSpec",
    "TopParameters",
    "check_plan",
]
