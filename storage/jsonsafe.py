"""Make payloads storable as JSON identically on every backend.

PostgreSQL rejects NaN/Infinity inside JSON and SQLite silently turns a NaN
column value into NULL, so the same metrics dict would round-trip differently
per backend. Training routinely produces NaN losses, so every payload is
normalised here before it reaches the database: non-finite floats become None.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

JSONValue = Any


def sanitize_float(value: float | None) -> float | None:
    """Non-finite -> None so Float columns behave the same on SQLite and PostgreSQL."""
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def sanitize_json(value: object, path: str = "$") -> JSONValue:
    """Return a copy that ``json.dumps(..., allow_nan=False)`` accepts.

    numpy scalars/arrays (anything with ``tolist``) are unwrapped because HF
    Trainer metrics often contain them; unknown objects raise early with the
    offending path instead of failing deep inside the driver.
    """
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return sanitize_float(value)
    if isinstance(value, Mapping):
        return {str(key): sanitize_json(item, f"{path}.{key}") for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [sanitize_json(item, f"{path}[{index}]") for index, item in enumerate(value)]
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        return sanitize_json(tolist(), path)
    raise TypeError(f"{path}: {type(value).__name__} is not JSON-serialisable")
