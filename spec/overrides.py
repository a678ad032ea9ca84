"""Per-trial overrides: `--set key=value` from the CLI and, later, values a sampler proposes.

A bare name is a top-level spec key (`model=...`) or else a hyperparameter, routed to
where it takes effect (TrainingArguments, the tokenizer's max_length, or the model config),
the same way search-space names are. A dotted name (`dataset.train_size`) sets that key of
the spec. Either way the result is validated again as a whole spec, so an override can
never produce an invalid trial.
"""

from __future__ import annotations

from typing import Any

import yaml
from pydantic import ValidationError

from sweepctl.spec.errors import SpecError
from sweepctl.spec.models import (
    RESOLVED,
    SweepSpec,
    format_validation_error,
    load_yaml,
    tunable_parameter_kind,
)

SECTION_OF_KIND = {"training": "training", "dataset": "dataset", "model": "model_args"}


def parse_assignments(assignments: list[str]) -> dict[str, Any]:
    """`["learning_rate=3e-5", "dataset.train_size=100"]` -> typed values (YAML scalars)."""
    parsed: dict[str, Any] = {}
    for item in assignments:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise SpecError(f"--set {item!r}: expected KEY=VALUE")
        try:
            parsed[key] = load_yaml(raw) if raw.strip() else None
        except yaml.YAMLError:
            raise SpecError(f"--set {key}: cannot parse value {raw!r}") from None
    return parsed


def apply_overrides(
    spec: SweepSpec, overrides: dict[str, Any], *, resolved: bool = False
) -> SweepSpec:
    """`resolved`: the values come from a checked sweep's own search space (a trial)."""
    if not overrides:
        return spec
    data = spec.model_dump(mode="python", by_alias=True)
    for key, value in overrides.items():
        path = key.split(".") if "." in key or key in SweepSpec.model_fields else None
        path = path or [_section_for(key), key]
        _parent_section(data, path, key)[path[-1]] = value
    try:
        return SweepSpec.model_validate(data, context={RESOLVED: resolved})
    except ValidationError as exc:
        raise SpecError(format_validation_error(exc, "--set")) from None


def _section_for(name: str) -> str:
    return SECTION_OF_KIND[tunable_parameter_kind(name)]


def _parent_section(data: dict[str, Any], path: list[str], key: str) -> dict[str, Any]:
    node: Any = data
    for part in path[:-1]:
        if not isinstance(node, dict) or not isinstance(node.get(part), dict):
            raise SpecError(f"--set {key}: '{part}' is not a section of the spec")
        node = node[part]
    return node
