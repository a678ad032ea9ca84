"""How far a score can move by chance: seed intervals, evaluation-set intervals, paired tests.

Why: the users this tool is for compare results that lie inside their own noise. On GLUE
MRPC's 408 dev pairs one pair is 0.25 points and the 95% interval of an accuracy near 0.85
is about +-3.5 points; between fine-tuning seeds a score moves by a point or more. So every
objective sweepctl shows carries one of these:

    t_interval        a configuration run with several seeds: mean, std and a Student-t
                      interval of the mean (n >= 2)
    paired_t_test     two configurations run with the same seeds: the mean of the per-seed
                      differences and its interval (a shared seed's luck cancels out)
    wilson_interval   one run's accuracy on n evaluation rows (a binomial proportion);
                      Wilson, not the normal approximation, which breaks near 0 and 1
    bootstrap_interval
                      one run's F1, precision or recall: resampling the stored
                      validation rows; a confusion matrix alone cannot give F1's interval

scipy provides the t distribution; it is imported on first use (`sweepctl status` stays
fast), and Wilson and the bootstrap are written out here so tests can hold them against
scipy's own.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Interval:
    """`estimate` in [low, high] at `confidence`; `n`: seeds or evaluation rows."""

    estimate: float
    low: float
    high: float
    n: int
    method: str  # t | wilson | bootstrap | paired_t
    confidence: float = CONFIDENCE
    std: float | None = None  # seed spread, for a t interval

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2.0

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Interval:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


@dataclass(frozen=True)
class PairedTest:
    """a - b over shared seeds. `distinguishable`: the interval of the mean difference
    excludes zero (p < 1 - confidence); with a single pair nothing can be told apart."""

    mean_difference: float
    low: float
    high: float
    p_value: float
    n: int
    confidence: float = CONFIDENCE

    @property
    def distinguishable(self) -> bool:
        return self.n >= 2 and (self.low > 0.0 or self.high < 0.0)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "distinguishable": self.distinguishable}


def _t_quantile(confidence: float, dof: int) -> float:
    from scipy.stats import t  # lazy: scipy costs ~0.3 s to import

    return float(t.ppf(0.5 + confidence / 2.0, dof))


def t_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> Interval:
    """Mean of n >= 2 seed runs with a Student-t interval; one run has no seed interval
    (low = high = the value, std None) and callers say so rather than invent one."""
    n = len(values)
    if n == 0:
        raise ValueError("t_interval needs at least one value")
    mean = statistics.fmean(values)
    if n == 1:
        return Interval(mean, mean, mean, 1, "t", confidence, None)
    std = statistics.stdev(values)
    half = _t_quantile(confidence, n - 1) * std / math.sqrt(n)
    return Interval(mean, mean - half, mean + half, n, "t", confidence, std)


def paired_t_test(
    a: Sequence[float], b: Sequence[float], confidence: float = CONFIDENCE
) -> PairedTest:
    """Student's paired t-test of mean(a - b) = 0 over the pairs (a[i], b[i])."""
    if len(a) != len(b) or not a:
        raise ValueError(f"paired_t_test needs equal, non-empty samples ({len(a)} vs {len(b)})")
    differences = [x - y for x, y in zip(a, b, strict=True)]
    n = len(differences)
    mean = statistics.fmean(differences)
    if n == 1:
        return PairedTest(mean, mean, mean, 1.0, 1, confidence)
    std = statistics.stdev(differences)
    if std == 0.0:  # identical differences: certain unless they are all zero
        p_value = 1.0 if mean == 0.0 else 0.0
        return PairedTest(mean, mean, mean, p_value, n, confidence)
    from scipy.stats import t

    error = std / math.sqrt(n)
    statistic = mean / error
    p_value = float(2.0 * t.sf(abs(statistic), n - 1))
    half = _t_quantile(confidence, n - 1) * error
    return PairedTest(mean, mean - half, mean + half, p_value, n, confidence)


def wilson_interval(successes: int, n: int, confidence: float = CONFIDENCE) -> Interval:
    """Wilson score interval of a proportion: accuracy = correct rows / evaluation rows."""
    if n <= 0 or not 0 <= successes <= n:
        raise ValueError(f"wilson_interval needs 0 <= successes <= n, n > 0 ({successes}/{n})")
    z = statistics.NormalDist().inv_cdf(0.5 + confidence / 2.0)
    p = successes / n
    denominator = 1.0 + z * z / n
    centre = (p + z * z / (2.0 * n)) / denominator
    half = z * math.sqrt(p * (1.0 - p) / n + z * z / (4.0 * n * n)) / denominator
    return Interval(p, max(0.0, centre - half), min(1.0, centre + half), n, "wilson", confidence)
