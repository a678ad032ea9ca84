"""Noise: how far a score moves by chance, so comparisons can say "not distinguishable".

The ground floor below `spec`: plain numbers in, intervals out, nothing of sweepctl's own
imported, so the workers (a trial's evaluation interval), the orchestrator (the confirm
stage's seed intervals and paired tests) and the service (mean +- CI) share one answer.
"""

from __future__ import annotations

from sweepctl.stats.bootstrap import bootstrap_interval
from sweepctl.stats.intervals import (
    CONFIDENCE,
    Interval,
    PairedTest,
    paired_t_test,
    t_interval,
    wilson_interval,
)

__all__ = [
    "CONFIDENCE",
    "Interval",
    "PairedTest",
    "bootstrap_interval",
    "paired_t_test",
    "t_interval",
    "wilson_interval",
]
