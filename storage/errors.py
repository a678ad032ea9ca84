"""Store exceptions, apart from the Store so helper modules can raise them too."""

from __future__ import annotations


class StoreError(RuntimeError):
    """Operational failure with a one-line message that names the (redacted) database."""


class SweepExistsError(StoreError):
    """``create_sweep`` on a name that already has stages: starting it again would mix
    two runs' trials, so the message points at ``sweepctl resume`` instead."""


def first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


class LeaseHeldError(StoreError):
    """Another live orchestrator drives the sweep; the message names it (who, since)."""
