"""A noisy objective with a known truth, run as a real runner
(`runner="python:tests.noisy_analytic:run"`), for tests of selection under seed noise.

loss = TRUE[(learning_rate, weight_decay)] + Gaussian noise of sd NOISE_SD, the noise
seeded by the configuration and the run's seed (the sweep's seed + the repeat), so a rerun
of the same configuration with the same seed returns the same loss, as fine-tuning with a
fixed seed does. The top three are 0.04-0.06 apart, about one noise sd: a single
seed often crowns the wrong one, the mean of a few does so less often.
"""

from __future__ import annotations

import random
from typing import Any

from sweepctl.workers.job import JobResult, TrialJob
from sweepctl.workers.replay import Plan, run_curve

NOISE_SD = 0.04
LEARNING_RATES = [3.0e-5, 5.0e-5]
WEIGHT_DECAYS = [0.0, 0.1]
TRUE: dict[tuple[float, float], float] = {
    (3.0e-5, 0.1): 1.00,  # the true best
    (3.0e-5, 0.0): 1.04,
    (5.0e-5, 0.1): 1.06,
    (5.0e-5, 0.0): 1.30,
}
TRUE_BEST = min(TRUE, key=TRUE.__getitem__)
SPACE = {
    "learning_rate": {"type": "categorical", "choices": LEARNING_RATES},
    "weight_decay": {"type": "categorical", "choices": WEIGHT_DECAYS},
}


def true_loss(params: dict[str, Any]) -> float:
    return TRUE[(params["learning_rate"], params["weight_decay"])]


def noisy_loss(params: dict[str, Any], seed: int) -> float:
    """The loss one run with `seed` gets: the truth plus that seed's draw."""
    key = f"{params['learning_rate']!r}|{params['weight_decay']!r}|{seed}"
    return true_loss(params) + random.Random(key).gauss(0.0, NOISE_SD)


def run(job: TrialJob, sinks: list[Any]) -> JobResult:
    seed = int(job.spec["training"].get("seed", 42))  # the sweep's seed + this repeat
    final = noisy_loss(job.params, seed)
    curve = (final * 3.0, final * 2.0, final)
    plan = Plan(curve, dict(job.params), {"runner": "noisy_analytic"}, {}, metric=None)
    return run_curve(job, plan, sinks)
