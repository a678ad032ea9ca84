"""Building blocks shared by the spec modules: strict frozen models and field-level errors
that know their key, so every message can name the dotted path of what is wrong."""

from __future__ import annotations

import difflib

from pydantic import BaseModel, ConfigDict

Scalar = str | int | float | bool


class FieldError(ValueError):
    """A validation error about one key inside a mapping, so the message can name its path."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def suggest(name: str, known: set[str] | frozenset[str]) -> str:
    close = difflib.get_close_matches(name, sorted(known), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""
