"""Is the sweep's budget used up? One answer for the orchestrator, `status` and the API.

Usage comes from the record (storage.usage, SweepRecord.driven_seconds), never from a
counter in this process, so what `status` shows in another terminal is what stops the
sweep here. The orchestrator asks before it starts anything (BudgetGuard): a sweep at its
limit starts no trial it would have to cancel, and a resume without a larger budget stops
at once with the same reason.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sweepctl.spec.errors import UsageError
from sweepctl.spec.overnight import BudgetSpec
from sweepctl.storage import Store, SweepRecord, TrialUsage
from sweepctl.storage.models import utcnow
from sweepctl.storage.views import SweepRow

CHECK_EVERY_S = 5.0  # how often the clocks are read; a trial's end is checked at once


@dataclass(frozen=True)
class BudgetUsage:
    wall_seconds: float
    trial_hours: float
    failures_in_a_row: int
    failures_total: int

    @classmethod
    def of(
        cls,
        store: Store,
        sweep: str,
        retry_queued: set[int] | None = None,
        record: SweepRecord | SweepRow | None = None,
    ) -> BudgetUsage:
        """`record`: the sweep when the caller has read it already (its lease clock)."""
        usage: TrialUsage = store.trial_usage(sweep, retry_queued or set())
        record = record if record is not None else store.sweep_row(sweep)
        return cls(
            wall_seconds=record.driven_seconds(utcnow()),
            trial_hours=usage.trial_seconds / 3600.0,
            failures_in_a_row=usage.failures_in_a_row,
            failures_total=usage.failures_total,
        )

    def used(self) -> dict[str, float]:
        """By the budget key each number is compared with."""
        return {
            "max_wall_time": self.wall_seconds,
            "max_trial_hours": self.trial_hours,
            "max_failures": self.failures_in_a_row,
            "max_failures_total": self.failures_total,
        }


def exhausted(budget: BudgetSpec, usage: BudgetUsage) -> str | None:
    """Why the sweep must stop now, naming the limit; None while every limit has room."""
    used = usage.used()
    for key, limit in budget.model_dump().items():
        if limit is not None and used[key] >= limit:
            return f"budget {key} used up: {_describe(key, used[key], limit)}"
    return None


def budget_report(budget: BudgetSpec, usage: BudgetUsage) -> dict[str, Any]:
    """What `status`, the API and the dashboard show: per limit, used, limit and left."""
    used = usage.used()
    rows = {}
    for key, limit in budget.model_dump().items():
        left = None if limit is None else max(0.0, float(limit) - used[key])
        rows[key] = {"used": used[key], "limit": limit, "left": left}
    return {"limits": rows, "exhausted": exhausted(budget, usage)}


def stored_budget_report(store: Store, sweep: str) -> dict[str, Any] | None:
    """The report for a stored sweep, or None when its spec sets no limit."""
    record = store.get_sweep(sweep)  # the spec and the lease clock in one read
    budget = BudgetSpec.model_validate(record.spec.get("budget") or {})
    if not budget.limited:
        return None
    return budget_report(budget, BudgetUsage.of(store, sweep, record=record))


def raised_budget(current: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """A stored budget with `changes` applied (None removes a limit), validated as the
    spec's `budget` is: UsageError naming the key, so nothing is written on bad input.
    `sweepctl resume --budget` and the API's resume share it."""
    from pydantic import ValidationError

    unknown = [key for key in changes if key not in BudgetSpec.model_fields]
    if unknown:
        known = ", ".join(BudgetSpec.model_fields)
        raise UsageError(f"budget.{unknown[0]}: unknown key; expected one of {known}")
    try:
        return BudgetSpec.model_validate({**current, **changes}).model_dump()
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(part) for part in error["loc"])
        raise UsageError(f"budget.{field}: {error['msg']}") from None


def budget_lines(report: dict[str, Any]) -> list[str]:
    """One line per limit the spec sets, e.g. `wall time 1h02m of 8h (6h58m left)`."""
    lines = []
    for key, row in report["limits"].items():
        if row["limit"] is not None:
            lines.append(_describe(key, row["used"], row["limit"], left=row["left"]))
    return lines


def _describe(key: str, used: float, limit: float, left: float | None = None) -> str:
    if key == "max_wall_time":
        text = f"wall time {format_seconds(used)} of {format_seconds(limit)}"
        return text + (f" ({format_seconds(left)} left)" if left is not None else "")
    if key == "max_trial_hours":
        text = f"{used:.3g} of {limit:g} trial-hours"
        return text + (f" ({left:.3g} left)" if left is not None else "")
    what = "in a row " if key == "max_failures" else ""
    text = f"{int(used)} of {int(limit)} configurations {what}ended without a result"
    return text + (f" ({int(left)} left)" if left is not None else "")


def format_seconds(seconds: float) -> str:
    """`45s`, `12m05s`, `3h07m`: what a duration in a budget line needs."""
    whole = round(seconds)
    if whole < 60:
        return f"{whole}s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


class BudgetGuard:
    """The stage loop's question "may anything more start?". The store is read at once
    after a trial ended (what it used, whether it failed) and otherwise at most every
    CHECK_EVERY_S seconds (the clocks)."""

    def __init__(self, store: Store, sweep: str, budget: BudgetSpec) -> None:
        self.store, self.sweep, self.budget = store, sweep, budget
        self._next_check = 0.0

    def reason(self, trial_ended: bool, retry_queued: set[int]) -> str | None:
        if not self.budget.limited:
            return None
        now = time.monotonic()
        if not trial_ended and now < self._next_check:
            return None
        self._next_check = now + CHECK_EVERY_S
        return exhausted(self.budget, BudgetUsage.of(self.store, self.sweep, retry_queued))
