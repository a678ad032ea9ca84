"""An analytic objective with known answers, run as a real sweepctl runner
(`runner="python:tests.analytic:run"`), for orchestrator tests that must know the truth.

loss = 1 + 3*|log10(learning_rate) + 4.3| + 1*|weight_decay - 0.05| * 10 + 0.001*warmup/100
so learning rate matters most, weight decay second, warmup barely; with `repeats`, each
seed adds noise of +-0.05, larger than warmup's whole effect and far smaller than the rest.
"""

from __future__ import annotations

import math
import os
from typing import Any

from sweepctl.workers.job import JobResult, TrialJob
from sweepctl.workers.replay import Plan, run_curve

NOISE = 0.05


def loss(params: dict[str, Any], repeat: int = 0) -> float:
    value = 1.0 + 3.0 * abs(math.log10(params["learning_rate"]) + 4.3)
    value += 10.0 * abs(params["weight_decay"] - 0.05)
    value += 0.001 * params["warmup_steps"] / 100.0
    return value + NOISE * math.sin(1.7 * repeat + 0.3)


def run(job: TrialJob, sinks: list[Any]) -> JobResult:
    final = loss(job.params, job.repeat)
    curve = (final * 3.0, final * 2.0, final * 1.5, final)
    # lets tests tell a Ray worker from the orchestrator, and which Ray cluster it ran in
    where = {"pid": os.getpid(), "ray_gcs": _ray_cluster()}
    plan = Plan(curve, dict(job.params), {"runner": "analytic"}, where, metric=None)
    return run_curve(job, plan, sinks)


def _ray_cluster() -> str | None:
    import ray

    return ray.get_runtime_context().gcs_address if ray.is_initialized() else None
