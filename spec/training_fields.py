"""TrainingArguments' fields and defaults, read from the installed transformers' source.

Why not import it: `from transformers import TrainingArguments` imports torch, which takes
seconds, and checking a spec (`sweepctl validate`, the server's submissions) must not. The
dataclass is declared in one file as `name: type = field(default=..., ...)`, which `ast`
reads exactly; anything unexpected (another layout, a default that is not a literal)
falls back to the import, so the answer is always the real one.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import importlib.util
from pathlib import Path
from typing import Any

NO_DEFAULT = object()  # a field that must be given


@functools.cache
def training_argument_names() -> frozenset[str]:
    """The init fields of TrainingArguments: what a spec's `training:` may set."""
    try:
        return frozenset(_source_fields())
    except (OSError, SyntaxError, LookupError):
        return frozenset(f.name for f in _imported_fields())


def training_argument_default(name: str) -> Any:
    """The default of one field, or NO_DEFAULT."""
    try:
        expression = _source_fields()[name]
        return NO_DEFAULT if expression is None else ast.literal_eval(expression)
    except (OSError, SyntaxError, LookupError, ValueError, TypeError):
        field = next(f for f in _imported_fields() if f.name == name)
        return NO_DEFAULT if field.default is dataclasses.MISSING else field.default


@functools.cache
def _source_fields() -> dict[str, ast.expr | None]:
    """name -> its default expression (None: no default), init fields only."""
    tree = ast.parse(_source().read_text(encoding="utf-8"))
    body = next(
        n.body for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "TrainingArguments"
    )
    fields: dict[str, ast.expr | None] = {}
    for item in body:
        if not isinstance(item, ast.AnnAssign) or not isinstance(item.target, ast.Name):
            continue
        value = item.value
        if isinstance(value, ast.Call) and _called(value) == "field":
            keywords = {kw.arg: kw.value for kw in value.keywords}
            if _is_false(keywords.get("init")):
                continue
            # a default_factory is code, not a literal: literal_eval refuses the call
            fields[item.target.id] = keywords.get("default", keywords.get("default_factory"))
        else:
            fields[item.target.id] = value
    if not fields:
        raise LookupError("no TrainingArguments fields found")
    return fields


def _source() -> Path:
    found = importlib.util.find_spec("transformers")
    if found is None or found.origin is None:
        raise LookupError("transformers is not installed")
    return Path(found.origin).parent / "training_args.py"


def _called(call: ast.Call) -> str | None:
    function = call.func
    if isinstance(function, ast.Name):
        return function.id
    return function.attr if isinstance(function, ast.Attribute) else None


def _is_false(value: ast.expr | None) -> bool:
    return isinstance(value, ast.Constant) and value.value is False


def _imported_fields() -> tuple[dataclasses.Field[Any], ...]:
    from transformers import TrainingArguments

    return tuple(f for f in dataclasses.fields(TrainingArguments) if f.init)
