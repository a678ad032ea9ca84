"""Every key a spec can hold is documented in docs/spec.md: a key added to a model without
its row fails here, not in a user's hands."""

from __future__ import annotations

import typing
from pathlib import Path

from pydantic import BaseModel

from sweepctl.spec import stages
from sweepctl.spec.models import SweepSpec
from tests.conftest import REPO

SPEC_DOC = (Path(REPO) / "docs" / "spec.md").read_text(encoding="utf-8")


def _models_in(annotation: object) -> list[type[BaseModel]]:
    found = []
    for part in typing.get_args(annotation) or (annotation,):
        for inner in typing.get_args(part) or (part,):
            if isinstance(inner, type) and issubclass(inner, BaseModel):
                found.append(inner)
    return found


def undocumented(model: type[BaseModel], prefix: str, seen: set[type[BaseModel]]) -> list[str]:
    if model in seen:
        return []
    seen.add(model)
    missing = []
    for name, field in model.model_fields.items():
        key = field.alias or name
        if f"`{key}`" not in SPEC_DOC and f"{key}:" not in SPEC_DOC:
            missing.append(prefix + key)
        for inner in _models_in(field.annotation):
            missing += undocumented(inner, f"{prefix}{key}.", seen)
    return missing


def test_every_spec_key_and_every_stage_key_is_in_docs_spec_md() -> None:
    seen: set[type[BaseModel]] = set()
    missing = undocumented(SweepSpec, "", seen)
    for model in vars(stages).values():
        if isinstance(model, type) and issubclass(model, BaseModel):
            missing += undocumented(model, f"stage {model.__name__}: ", seen)
    assert not missing, f"keys without a row in docs/spec.md: {missing}"
    assert {"BudgetSpec", "NotifySpec", "ResourcesSpec"} <= {m.__name__ for m in seen}
