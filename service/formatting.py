"""Jinja2 filters for the pages: numbers, durations, byte sizes and times as people read
them. The sweep page's scripts format live values the same way (assets/common.js)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from jinja2 import Undefined


def blank(value: Any) -> bool:
    """Missing keys (older records, replayed trials) render as a dash, not an error."""
    return value is None or isinstance(value, Undefined) or value == ""


def number(value: Any) -> str:
    """Four significant digits, the precision `sweepctl status` prints; blanks stay blank."""
    if blank(value):
        return "–"
    if _is_interval(value):  # a stored Interval.to_dict(), e.g. metrics.objective_interval
        return f"{number(value['estimate'])} ({number(value['low'])}–{number(value['high'])})"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if not math.isfinite(value):
        return str(value)
    return f"{value:.4g}"


def _is_interval(value: Any) -> bool:
    return isinstance(value, Mapping) and {"estimate", "low", "high"} <= value.keys()


def duration(seconds: Any) -> str:
    if blank(seconds):
        return "–"
    seconds = float(seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m" if hours else f"{minutes}m {secs:02d}s"


def size(value: Any) -> str:
    if blank(value):
        return "–"
    amount = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if amount < 1024 or unit == "GiB":
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{amount:.1f} GiB"


def when(value: Any) -> str:
    """An ISO timestamp (UTC) as 'YYYY-MM-DD HH:MM:SS UTC'."""
    if blank(value):
        return "–"
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


FILTERS: dict[str, Callable[[Any], str]] = {
    "number": number,
    "duration": duration,
    "size": size,
    "when": when,
}
