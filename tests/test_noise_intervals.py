"""sweepctl.stats against the formulas, the tables and scipy/sklearn's own answers.

Every interval sweepctl shows comes from these four functions, so each is held against an
independent implementation: scipy's binomtest, t distribution, ttest_rel and bootstrap,
and sklearn's metric functions for the exact scores the bootstrap resamples.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from scipy import stats as scipy_stats
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score

from sweepctl.stats import (
    Interval,
    bootstrap_interval,
    paired_t_test,
    t_interval,
    wilson_interval,
)
from sweepctl.stats.bootstrap import score

SKLEARN = {"f1": f1_score, "precision": precision_score, "recall": recall_score}
# Monte-Carlo error of a 2.5% quantile over 2,000 resamples of a few hundred rows is well
# under a point; different generators must agree within this
BOOTSTRAP_TOLERANCE = 0.02


def noisy_predictions(rows: int, classes: int, right: float, seed: int) -> tuple[Any, Any]:
    """Labels and predictions that agree on about `right` of the rows."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, rows)
    wrong = rng.random(rows) > right
    predicted = np.where(wrong, (labels + rng.integers(1, classes, rows)) % classes, labels)
    return labels, predicted


# --- Wilson -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("successes", "n", "low", "high"),
    [
        (81, 263, 0.25529, 0.36621),  # (p + z²/2n ± z√(p(1-p)/n + z²/4n²)) / (1 + z²/n)
        (0, 10, 0.0, 0.27753),  # no successes: the interval still has width
        (10, 10, 0.72247, 1.0),
    ],
)
def test_wilson_interval_matches_the_formula_worked_by_hand(
    successes: int, n: int, low: float, high: float
) -> None:
    interval = wilson_interval(successes, n)
    assert interval.low == pytest.approx(low, abs=5e-6)
    assert interval.high == pytest.approx(high, abs=5e-6)
    assert interval.estimate == successes / n
    assert (interval.n, interval.method, interval.confidence) == (n, "wilson", 0.95)


@pytest.mark.parametrize(("successes", "n"), [(81, 263), (0, 10), (10, 10), (279, 408), (1, 3)])
@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
def test_wilson_interval_equals_scipy_binomtest(successes: int, n: int, confidence: float) -> None:
    expected = scipy_stats.binomtest(successes, n).proportion_ci(confidence, method="wilson")
    interval = wilson_interval(successes, n, confidence)
    assert interval.low == pytest.approx(expected.low, abs=1e-12)
    assert interval.high == pytest.approx(expected.high, abs=1e-12)


@pytest.mark.parametrize(("successes", "n"), [(11, 10), (-1, 10), (0, 0), (1, -5)])
def test_wilson_interval_refuses_impossible_counts(successes: int, n: int) -> None:
    with pytest.raises(ValueError, match="wilson_interval"):
        wilson_interval(successes, n)


# --- Student t ----------------------------------------------------------------------------


def test_t_interval_of_five_seeds_uses_the_table_value_2_776() -> None:
    values = [0.84, 0.86, 0.85, 0.83, 0.87]
    interval = t_interval(values)
    std = math.sqrt(sum((v - 0.85) ** 2 for v in values) / 4)
    assert interval.estimate == pytest.approx(0.85)
    assert interval.std == pytest.approx(std)
    assert interval.half_width == pytest.approx(2.776 * std / math.sqrt(5), rel=2e-4)
    assert (interval.n, interval.method) == (5, "t")


@pytest.mark.parametrize("n", [2, 3, 5, 10, 30])
def test_t_interval_equals_scipy_t_interval(n: int) -> None:
    values = np.random.default_rng(n).normal(0.8, 0.02, n)
    low, high = scipy_stats.t.interval(
        0.95, n - 1, loc=values.mean(), scale=scipy_stats.sem(values)
    )
    interval = t_interval(values.tolist())
    assert (interval.low, interval.high) == (pytest.approx(low), pytest.approx(high))


def test_one_seed_has_no_seed_interval_and_none_is_an_error() -> None:
    assert t_interval([0.8]) == Interval(0.8, 0.8, 0.8, 1, "t", 0.95, None)
    with pytest.raises(ValueError, match="at least one"):
        t_interval([])


# --- paired t -----------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_paired_t_test_p_value_and_interval_equal_scipy_ttest_rel(seed: int) -> None:
    rng = np.random.default_rng(seed)
    b = rng.normal(0.85, 0.01, 6)
    a = b + rng.normal(0.004 * seed, 0.006, 6)
    expected = scipy_stats.ttest_rel(a, b)
    ci = expected.confidence_interval(0.95)
    test = paired_t_test(a.tolist(), b.tolist())
    assert test.p_value == pytest.approx(expected.pvalue, rel=1e-9)
    assert (test.low, test.high) == (pytest.approx(ci.low), pytest.approx(ci.high))
    assert test.mean_difference == pytest.approx(float(np.mean(a - b)))
    assert test.distinguishable == (expected.pvalue < 0.05)


def test_paired_t_test_of_one_pair_tells_nothing_apart() -> None:
    test = paired_t_test([0.9], [0.1])
    assert not test.distinguishable and test.p_value == 1.0


@pytest.mark.parametrize(("a", "b"), [([], []), ([0.8], [0.8, 0.9])])
def test_paired_t_test_refuses_unpaired_samples(a: list[float], b: list[float]) -> None:
    with pytest.raises(ValueError, match="paired_t_test"):
        paired_t_test(a, b)


# --- bootstrap ----------------------------------------------------------------------------


@pytest.mark.parametrize("classes", [2, 3])
@pytest.mark.parametrize("metric", ["accuracy", "f1", "precision", "recall"])
def test_score_equals_sklearn(classes: int, metric: str) -> None:
    labels, predicted = noisy_predictions(150, classes, 0.7, seed=classes)
    if metric == "accuracy":
        expected = accuracy_score(labels, predicted)
    else:
        average = "binary" if classes == 2 else "macro"
        expected = SKLEARN[metric](labels, predicted, average=average, zero_division=0)
    assert score(labels.tolist(), predicted.tolist(), metric, classes) == pytest.approx(expected)


def test_score_counts_a_never_predicted_class_as_zero_like_sklearn() -> None:
    labels, predicted = [0, 0, 1, 1, 2, 2], [0, 0, 1, 1, 1, 1]
    expected = f1_score(labels, predicted, labels=[0, 1, 2], average="macro", zero_division=0)
    assert score(labels, predicted, "f1", 3) == pytest.approx(expected)


def _vectorised(metric: str, classes: int) -> Any:
    """An independent F1/precision/recall for scipy.stats.bootstrap (batched rows)."""

    def statistic(labels: Any, predicted: Any, axis: int = -1) -> Any:
        per_class = []
        for c in range(classes):
            hits = np.sum((labels == c) & (predicted == c), axis=axis)
            guessed = np.sum(predicted == c, axis=axis)
            actual = np.sum(labels == c, axis=axis)
            precision = np.divide(hits, guessed, out=np.zeros(hits.shape), where=guessed > 0)
            recall = np.divide(hits, actual, out=np.zeros(hits.shape), where=actual > 0)
            both = precision + recall
            f1 = np.divide(2 * precision * recall, both, out=np.zeros(hits.shape), where=both > 0)
            per_class.append({"precision": precision, "recall": recall, "f1": f1}[metric])
        return per_class[1] if classes == 2 else np.mean(per_class, axis=0)

    return statistic


@pytest.mark.parametrize(("metric", "classes"), [("f1", 2), ("precision", 2), ("f1", 3)])
def test_bootstrap_interval_agrees_with_scipy_percentile_bootstrap(
    metric: str, classes: int
) -> None:
    labels, predicted = noisy_predictions(300, classes, 0.75, seed=7)
    expected = scipy_stats.bootstrap(
        (labels, predicted),
        _vectorised(metric, classes),
        paired=True,
        vectorized=True,
        n_resamples=4000,
        method="percentile",
        rng=np.random.default_rng(1),
    ).confidence_interval
    interval = bootstrap_interval(labels.tolist(), predicted.tolist(), metric, classes)
    assert interval.low == pytest.approx(expected.low, abs=BOOTSTRAP_TOLERANCE)
    assert interval.high == pytest.approx(expected.high, abs=BOOTSTRAP_TOLERANCE)
    assert interval.low < interval.estimate < interval.high
    assert (interval.n, interval.method) == (300, "bootstrap")


def test_bootstrap_interval_is_reproducible_from_its_seed() -> None:
    labels, predicted = noisy_predictions(100, 2, 0.8, seed=3)
    first = bootstrap_interval(labels.tolist(), predicted.tolist(), "f1", 2)
    assert bootstrap_interval(labels.tolist(), predicted.tolist(), "f1", 2) == first
    other = bootstrap_interval(labels.tolist(), predicted.tolist(), "f1", 2, seed=1)
    assert other != first


def test_a_perfect_predictor_has_a_zero_width_bootstrap_interval_at_one() -> None:
    labels = [0, 1, 1, 0, 1, 0, 0, 1]
    for metric in ("accuracy", "f1", "precision", "recall"):
        interval = bootstrap_interval(labels, labels, metric, 2)
        assert (interval.estimate, interval.low, interval.high) == (1.0, 1.0, 1.0), metric
    wilson = wilson_interval(8, 8)
    assert wilson.high == 1.0 and wilson.low < 1.0  # eight rows cannot prove perfection


@pytest.mark.parametrize(
    ("labels", "predicted", "metric", "message"),
    [
        ([0, 1], [0, 1], "matthews", "metric must be one of"),
        ([0, 1, 1], [0, 1], "f1", "as many predictions as labels"),
        ([], [], "f1", "at least one"),
    ],
)
def test_bootstrap_interval_refuses_what_it_cannot_resample(
    labels: list[int], predicted: list[int], metric: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        bootstrap_interval(labels, predicted, metric, 2)


def test_interval_survives_its_stored_form() -> None:
    interval = t_interval([0.8, 0.82, 0.81])
    assert Interval.from_dict(interval.to_dict()) == interval
    assert Interval.from_dict({**interval.to_dict(), "added_later": 1}) == interval
