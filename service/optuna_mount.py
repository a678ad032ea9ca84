"""What sweepctl forbids through the mounted optuna-dashboard, whatever the token.

A sweep finds its Optuna study by name and tells Optuna every trial's result itself.
Deleting or renaming the study, or finishing/skipping a trial by hand, would corrupt a
sweep underneath its orchestrator, so those writes are refused with a one-line reason;
notes, user attributes and preferences stay allowed (with the token). The schema upgrade
form is refused too: migrating the shared database is a deliberate command, not a click.
"""

from __future__ import annotations

import re

_REFUSED = (
    (re.compile(r"/api/studies/\d+/rename$"), "renaming a study"),
    (re.compile(r"/api/trials/\d+/tell$"), "finishing a trial by hand"),
    (re.compile(r"/api/studies/\d+/\d+/skip$"), "skipping a trial by hand"),
)
_WHY = "would corrupt the sweep that owns it; sweepctl refuses it through the dashboard"


def mount_refusal(method: str, path: str) -> str | None:
    """The reason a write is refused, or None. sweepctl's own API has no DELETE."""
    if path.startswith("/api/v1/"):
        return None
    if method == "DELETE":
        return f"deleting through optuna-dashboard ({path}) {_WHY}"
    if path == "/incompatible-rdb-schema":
        return "migrating the database through optuna-dashboard is refused; run it yourself"
    for pattern, action in _REFUSED:
        if pattern.fullmatch(path):
            return f"{action} ({path}) {_WHY}"
    return None
