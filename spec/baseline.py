"""The baseline: each searched parameter's value in the spec as written.

It is the OFAT reference point and where every stage starts, and it must exist before a
sweep writes anything, so it lives on the ground floor: a searched TrainingArguments field
falls back to Hugging Face's default, a model-config key must be set in `model_args`.
"""

from __future__ import annotations

from typing import Any

from sweepctl.spec.errors import SpecError
from sweepctl.spec.models import SweepSpec, tunable_parameter_kind
from sweepctl.spec.training_fields import NO_DEFAULT, training_argument_default


def baseline(spec: SweepSpec) -> dict[str, Any]:
    return {name: _spec_value(spec, name) for name in spec.search_space}


def _spec_value(spec: SweepSpec, name: str) -> Any:
    kind = tunable_parameter_kind(name)
    if kind == "dataset":
        return getattr(spec.dataset, name)
    if kind == "training":
        if name in spec.training:
            return spec.training[name]
        return _training_default(name)
    if name in spec.model_args:
        return spec.model_args[name]
    raise SpecError(
        f"search_space.{name}: no baseline value; set model_args.{name} to the value the "
        "sweep starts from"
    )


def _training_default(name: str) -> Any:
    default = training_argument_default(name)
    if default is NO_DEFAULT:
        raise SpecError(f"search_space.{name}: no default; set training.{name}")
    return default
