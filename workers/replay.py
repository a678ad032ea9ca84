"""Runners that record trials without training: NMTLC replay and a no-op.

Why: strategies, pruners and the orchestrator have to be tested and compared on real
hyperparameter landscapes, and fine-tuning makes every such experiment take hours. NMTLC
(../shared/data/nmtlc, Zhang and Duh) holds 2,483 real NMT training runs with their
learning curves; replaying one turns a trial into seconds while keeping the real shape of
the landscape (good and bad regions, early plateaus, divergence) that pruners react to.

Mapping onto a sweepctl trial:
    NMTLC dataset_name          <- spec dataset.name (e.g. "ted-zh-en")
    NMTLC hyperparams           <- trial params, else spec model_args (where apply_overrides
                                   routes those names); exact record, else the nearest one
    NMTLC basemodel + sizes     <- a `base_model` value "xglm-2048x48" (LoRA corpora): the
                                   pretrained model, its width and depth, as one choice
    checkpoint i (1-based)      -> evaluation with epoch=float(i), step=i
    dev perplexity              -> eval_loss (objective metric "loss", minimized) and
                                   metrics["perplexity"]
    trial objective             -> min perplexity so far (the best checkpoint's score)

Rows go through the same lifecycle as a real trial (workers.lifecycle): store first, then
the sinks, so a pruning sink that raises optuna.TrialPruned leaves exactly the evaluations
it saw.
`run_noop` records a one-evaluation trial: the cost of the store and the orchestration
alone, for the overhead benchmark.
"""

from __future__ import annotations

import functools
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna

from sweepctl.storage import Store, TrialState
from sweepctl.workers.job import JobResult, TrialJob
from sweepctl.workers.lifecycle import LiveTrial, NewTrial, trial_lifecycle
from sweepctl.workers.rows import EvaluationRow

NMTLC_PARAMS = (  # every record has all of them, scratch runs and LoRA fine-tunes alike
    "bpe",
    "num_layers",
    "model_size",
    "ff_num_hidden",
    "initial_lr",
    "batch_size",
    "dataset_size",
    "r",
)
LOG_SCALE_PARAMS = frozenset({"initial_lr"})
BASE_MODEL_PARAM = "base_model"  # LoRA corpora: "<basemodel>-<model_size>x<num_layers>"
STEP_SECONDS_ENV = "SWEEPCTL_REPLAY_STEP_SECONDS"


@dataclass(frozen=True)
class CurveRecord:
    index: int  # position in nmtlc.json: the deterministic tie-breaker
    hyperparams: dict[str, float]
    curve: tuple[float, ...]
    basemodel: str


@dataclass(frozen=True)
class Plan:
    """What to replay and what to store about it; shared by the replay and the no-op."""

    curve: tuple[float, ...]
    params: dict[str, Any]
    config: dict[str, Any]
    resources: dict[str, Any] = field(default_factory=dict)
    metric: str | None = "perplexity"  # extra per-row metric carrying the curve value


class ReplayRunner:
    """The `replay:<file>` runner: one NMTLC learning curve per trial."""

    def __init__(self, records: dict[str, tuple[CurveRecord, ...]]) -> None:
        self.records = records

    @classmethod
    def cached(cls, path: Path) -> ReplayRunner:
        """Parsing 2 MB of JSON per trial would dominate a replayed trial; once per process."""
        return _load(Path(path).resolve())

    def __call__(self, job: TrialJob, sinks: list[Any]) -> JobResult:
        return run_curve(job, self.plan(job), sinks)

    def plan(self, job: TrialJob) -> Plan:
        """Every bad-input error (dataset, values, objective) raises here, before the store."""
        _check_objective(job.spec)
        dataset = job.spec.get("dataset", {}).get("name")
        merged = {**job.spec.get("model_args", {}), **job.params}
        basemodel, shape = _base_model(merged)
        wanted = {**wanted_hyperparams(merged, {}), **shape}
        record, gap = self.lookup(dataset, wanted, job.repeat, basemodel)
        resources = {
            "nmtlc_dataset": dataset,
            "replay_record": record.hyperparams,
            "replay_index": record.index,
            "replay_basemodel": record.basemodel,
            "replay_match": "exact" if gap == 0.0 else "nearest",
            "replay_distance": round(gap, 6),
            "ignored_params": sorted(set(job.params) - {*NMTLC_PARAMS, BASE_MODEL_PARAM}),
        }
        config = {"replay_record": record.hyperparams, "nmtlc_dataset": dataset}
        return Plan(record.curve, dict(job.params), config, resources)

    def lookup(
        self,
        dataset: str | None,
        wanted: dict[str, float],
        replica: int = 0,
        basemodel: str | None = None,
    ) -> tuple[CurveRecord, float]:
        """The record at the smallest distance. Several NMTLC configurations were trained
        more than once; among equally near records `replica` (the job's repeat) picks
        one in file order, so repeated seeds see the benchmark's own run-to-run noise."""
        candidates = self.records.get(dataset or "")
        if not candidates:
            known = ", ".join(sorted(self.records))
            raise ValueError(f"NMTLC has no records for dataset {dataset!r}; known: {known}")
        if basemodel is not None:
            candidates = tuple(r for r in candidates if r.basemodel == basemodel)
            if not candidates:
                raise ValueError(f"NMTLC {dataset!r} has no records of base model {basemodel!r}")
        scored = [(distance(wanted, r.hyperparams), r) for r in candidates]
        best = min(d for d, _ in scored)
        nearest = [r for d, r in scored if d <= best + 1e-12]  # ties, up to float noise
        return nearest[replica % len(nearest)], best


def wanted_hyperparams(params: dict[str, Any], model_args: dict[str, Any]) -> dict[str, float]:
    """NMTLC names only: the trial's values win over the spec's model_args."""
    merged = {**model_args, **params}
    wanted: dict[str, float] = {}
    for name in NMTLC_PARAMS:
        if name not in merged:
            continue
        value = merged[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"replay: {name} must be a number, got {value!r}")
        if name in LOG_SCALE_PARAMS and value <= 0:
            raise ValueError(f"replay: {name} must be positive, got {value!r}")
        wanted[name] = float(value)
    return wanted


def _base_model(merged: dict[str, Any]) -> tuple[str | None, dict[str, float]]:
    """`base_model: xglm-2048x48` fixes the record's basemodel, model_size and num_layers:
    on the LoRA corpora those three are one choice (the pretrained model), not a grid."""
    value = merged.get(BASE_MODEL_PARAM)
    if value is None:
        return None, {}
    name, _, shape = str(value).rpartition("-")
    width, _, depth = shape.partition("x")
    if not name or not width.isdigit() or not depth.isdigit():
        raise ValueError(f"replay: {BASE_MODEL_PARAM} must look like 'xglm-2048x48', got {value!r}")
    return name, {"model_size": float(width), "num_layers": float(depth)}


def distance(wanted: dict[str, float], record: dict[str, float]) -> float:
    """Log-scale for the learning rate (3e-4 is as far from 6e-4 as 6e-4 from 1.2e-3),
    relative difference for sizes and counts, so no parameter's unit dominates."""
    return sum(_gap(name, value, record[name]) for name, value in wanted.items())


def _gap(name: str, a: float, b: float) -> float:
    if name in LOG_SCALE_PARAMS:
        return abs(math.log(a) - math.log(b))
    scale = max(abs(a), abs(b))
    return 0.0 if scale == 0 else abs(a - b) / scale


def run_noop(job: TrialJob, sinks: list[Any]) -> JobResult:
    """A constant-objective trial: what the store and the orchestration cost per trial."""
    plan = Plan((0.0,), dict(job.params), {"runner": "noop"}, metric=None)
    return run_curve(job, plan, sinks)


@functools.cache
def _load(path: Path) -> ReplayRunner:
    data = json.loads(path.read_text(encoding="utf-8"))
    grouped: dict[str, list[CurveRecord]] = {}
    for index, item in enumerate(data):
        record = CurveRecord(
            index=index,
            hyperparams=dict(item["hyperparams"]),
            curve=tuple(float(p) for p in item["perplexity_curve"]),
            basemodel=str(item.get("basemodel", "")),
        )
        if record.curve:
            grouped.setdefault(item["dataset_name"], []).append(record)
    return ReplayRunner({name: tuple(rs) for name, rs in grouped.items()})


def _check_objective(spec: dict[str, Any]) -> None:
    """A replay only has perplexity; a study maximizing something else would be nonsense."""
    objective = spec.get("objective", {})
    metric, direction = objective.get("metric", "f1"), objective.get("direction")
    if metric != "loss" or direction == "maximize":
        raise ValueError(
            f"replay reports perplexity as 'loss' (minimize); the spec's objective is "
            f"{metric!r} ({direction or 'default direction'})"
        )


def _step_seconds() -> float:
    raw = os.environ.get(STEP_SECONDS_ENV) or "0"
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"{STEP_SECONDS_ENV}={raw!r} is not a number of seconds") from None


def run_curve(job: TrialJob, plan: Plan, sinks: list[Any]) -> JobResult:
    """The plan's curve through the trial lifecycle, one evaluation per checkpoint."""
    pause = _step_seconds()
    started = time.perf_counter()
    seen: list[float] = []
    best: float | None = None
    new = NewTrial(job.sweep, job.spec, plan.params, job.stage, job.optuna_number)
    with (
        Store(job.db_url) as store,
        trial_lifecycle(store, plan.config, trial_id=job.trial_id, new=new) as trial,
    ):
        trial.sinks = list(sinks)
        state = _replay(trial, plan, seen, pause)
        resources = {
            **plan.resources,
            "wall_time_s": round(time.perf_counter() - started, 3),
            "evaluations": len(seen),
        }
        if state is TrialState.PRUNED:
            resources["pruned_after_evaluations"] = len(seen)
        best = min(seen) if seen else None
        trial.finish(
            state, objective=best, metrics=_metrics(seen, plan.metric), resources=resources
        )
    failure = trial.failure
    return JobResult(
        job.optuna_number,
        trial.state.value,
        objective=None if failure else best,
        trial_id=trial.id,
        epochs_run=len(seen),
        max_epochs=len(plan.curve),
        error=failure.reason if failure else None,
        failure_kind=failure.kind if failure else None,
    )


def _replay(trial: LiveTrial, plan: Plan, seen: list[float], pause: float) -> TrialState:
    try:
        for value in plan.curve:
            time.sleep(pause)  # sleep(0) is free; tests set a pause to kill a sweep mid-trial
            seen.append(value)
            trial.record(_row(len(seen), value, plan.metric))
    except optuna.TrialPruned:
        return TrialState.PRUNED
    return TrialState.COMPLETED


def _row(number: int, value: float, metric: str | None) -> EvaluationRow:
    metrics = {metric: value} if metric else {}
    return EvaluationRow(float(number), number, None, value, None, None, metrics)


def _metrics(seen: list[float], metric: str | None) -> dict[str, Any]:
    """The best checkpoint's scores, as a real trial reports them after loading it back."""
    if not seen:
        return {}
    best = min(seen)
    epoch = float(seen.index(best) + 1)
    return {**({metric: best} if metric else {}), "eval_loss": best, "epoch": epoch}
