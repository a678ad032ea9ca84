"""One fine-tuning trial, from a resolved spec to a stored result.

prepare (model, tokenizer, data, labels)   <- every bad-input error happens here,
    |                                         before the store is touched
trial_lifecycle (workers.lifecycle): PENDING row adopted or created, then RUNNING
    |  Trainer: one evaluation row per epoch -> store, W&B, console
    |  early stopping; the best checkpoint is loaded back at the end
the best evaluation's predictions: objective interval, degenerate reason (workers.noise)
best checkpoint saved, per-epoch checkpoints deleted, test split evaluated once
trial.finish                  COMPLETED | PRUNED (objective, metrics, resources)
the lifecycle on an exception FAILED (NaN/inf loss, crash: reason + traceback + kind)
"""

from __future__ import annotations

import resource
import shutil
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import optuna

from sweepctl.spec.batch import Batch
from sweepctl.spec.errors import SpecError
from sweepctl.spec.models import SweepSpec, spec_to_dict
from sweepctl.storage import Store, TrialState
from sweepctl.workers.arguments import Hardware, ray_assigned_resources, training_arguments
from sweepctl.workers.continuation import (
    Continuation,
    discard_checkpoints,
    find_continuation,
    run_dir,
)
from sweepctl.workers.data import PreparedData, dataset_seed, prepare_data
from sweepctl.workers.faults import fault_callbacks
from sweepctl.workers.job import JobResult, TrialJob
from sweepctl.workers.lifecycle import NewTrial, trial_lifecycle
from sweepctl.workers.metrics import ClassificationMetrics, classification_scores
from sweepctl.workers.models import (
    count_parameters,
    load_classifier,
    load_config,
    load_tokenizer,
    resolve_model_source,
)
from sweepctl.workers.noise import evaluation_noise
from sweepctl.workers.predictions import ValidationPredictions
from sweepctl.workers.recorder import EpochProgress, EvaluationRecorder, GuardedTrainer
from sweepctl.workers.rows import EvaluationRow, Sink
from sweepctl.workers.tracking import WandbTracker

HIDDEN_ARGUMENTS = ("output_dir", "disable_tqdm", "report_to")


@dataclass
class PreparedTrial:
    spec: SweepSpec
    params: dict[str, Any]
    model_source: str
    tokenizer: Any
    data: PreparedData
    model: Any
    hardware: Hardware


@dataclass(frozen=True)
class TrialOutcome:
    trial_id: int
    state: TrialState
    objective: float | None
    metrics: dict[str, Any]
    resources: dict[str, Any]
    evaluations: list[EvaluationRow] = field(default_factory=list)
    checkpoint: Path | None = None
    wandb_run: str | None = None
    error: str | None = None
    failure_kind: str | None = None


def prepare_trial(spec: SweepSpec, params: dict[str, Any], home: Path) -> PreparedTrial:
    """Load everything a trial needs. Raises UsageError subclasses for bad input."""
    source = resolve_model_source(spec.model)
    tokenizer = load_tokenizer(source, spec.model)
    data = prepare_data(spec.dataset, tokenizer, dataset_seed(spec), home / "cache" / "tokenized")
    config = load_config(source, spec.model, data.label_names, spec.model_args)
    _seed_everything(spec.seed)  # the new classifier head must not depend on earlier trials
    model = load_classifier(source, spec.model, config)
    return PreparedTrial(spec, params, source, tokenizer, data, model, Hardware.detect())


def resolved_config(prepared: PreparedTrial) -> dict[str, Any]:
    """Every setting the trial runs with, as stored in the trial row and sent to W&B."""
    spec = prepared.spec
    args = training_arguments(spec, Path("."), prepared.hardware, progress=False)
    return {
        "model": spec.model,
        "model_source": prepared.model_source,
        "model_args": dict(spec.model_args),
        "labels": prepared.data.label_names,
        "max_length": spec.dataset.max_length,
        "training": {k: v for k, v in args.items() if k not in HIDDEN_ARGUMENTS},
        "early_stopping_patience": spec.training.get("early_stopping_patience"),
        "objective": spec.objective.model_dump(),
        "dataset": spec.dataset.model_dump(mode="json"),
        "rows": {role: len(split) for role, split in prepared.data.splits.items()},
        "device": prepared.hardware.device_name,
    }


def run_trial(
    spec: SweepSpec,
    params: dict[str, Any],
    store: Store,
    home: Path,
    *,
    progress: bool = True,
    stage: str | None = None,
    sinks: list[Sink] | None = None,
    optuna_trial_number: int | None = None,
    trial_id: int | None = None,
    callbacks: list[Any] | None = None,
    config_notes: dict[str, Any] | None = None,
    continue_from: tuple[int, ...] = (),
) -> TrialOutcome:
    """``trial_id``: the PENDING row a sweep's orchestrator made for this trial; without
    one (`sweepctl trial`) the row is created here, after every bad-input check passed.
    ``callbacks``: extra Trainer callbacks (workers.faults). ``config_notes``: what the
    orchestrator changed for this try (TrialJob.config_notes), kept in the record.
    ``continue_from``: earlier interrupted tries of this configuration, newest first,
    whose latest checkpoint this try continues from (workers.continuation)."""
    prepared = prepare_trial(spec, params, home)
    config = resolved_config(prepared)
    config |= config_notes or {}
    continuation = find_continuation(store, home, spec.name, continue_from)
    if continuation is not None:
        config["continued_from"] = continuation.record()
    new = NewTrial(spec.name, spec_to_dict(spec), params, stage, optuna_trial_number)
    outcome: TrialOutcome | None = None
    tracker: WandbTracker | None = None
    with trial_lifecycle(store, config, trial_id=trial_id, new=new) as trial:
        tracker = WandbTracker(
            spec.tracking.wandb,
            spec.name,
            f"{spec.name}-trial-{trial.id}",
            {**_flat_config(config), "trial_id": trial.id, "params": params},
            home,
        )
        trial.on_end.append(_finish_tracker(tracker))
        if tracker.run_path:
            store.add_artifact(trial.id, "wandb_run", tracker.run_path)
        trial.sinks = [tracker.log_evaluation, *(sinks or [])]
        directory = run_dir(home, spec.name, trial.id)
        extra = callbacks or []
        outcome = _train(
            prepared, trial.id, directory, [trial.record], progress, extra, continuation
        )
        if outcome.checkpoint is not None:
            size = outcome.resources["checkpoint_bytes"]
            store.add_artifact(trial.id, "checkpoint", str(outcome.checkpoint), size)
        trial.finish(
            outcome.state,
            objective=outcome.objective,
            metrics=outcome.metrics,
            resources=outcome.resources,
        )
        discard_checkpoints(home, spec.name, continue_from)
    wandb_run = tracker.run_path if tracker else None
    if trial.failure is not None or outcome is None:
        failure = trial.failure
        return TrialOutcome(
            trial.id,
            TrialState.FAILED,
            None,
            {},
            {},
            error=failure.reason if failure else None,
            wandb_run=wandb_run,
            failure_kind=failure.kind if failure else None,
        )
    return TrialOutcome(**{**outcome.__dict__, "wandb_run": wandb_run})


def _finish_tracker(tracker: WandbTracker) -> Any:
    """W&B hears how the trial ended once the store has it, on every path."""

    def finish(state: TrialState, summary: dict[str, Any]) -> None:
        failed = state is not TrialState.COMPLETED and state is not TrialState.PRUNED
        tracker.finish({"state": state.value, **summary}, failed=failed)

    return finish


def _train(
    prepared: PreparedTrial,
    trial_id: int,
    run_dir: Path,
    sinks: list[Sink],
    progress: bool,
    extra_callbacks: list[Any],
    continuation: Continuation | None = None,
) -> TrialOutcome:
    from transformers import DataCollatorWithPadding, EarlyStoppingCallback, TrainingArguments
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    spec = prepared.spec
    try:  # the only TrainingArguments of the trial; a value HF refuses is the user's input
        args = TrainingArguments(
            **training_arguments(spec, run_dir / "checkpoints", prepared.hardware, progress)
        )
    except (TypeError, ValueError) as exc:
        raise SpecError(f"training: {str(exc).splitlines()[0]}") from None
    metrics = ClassificationMetrics(prepared.data.label_names)
    progress_bar = EpochProgress() if progress else None
    if progress_bar is not None:
        sinks = [*sinks, progress_bar.print_row]
    recorder = EvaluationRecorder(metrics, sinks)
    callbacks: list[Any] = [recorder, *extra_callbacks]
    patience = spec.training.get("early_stopping_patience")
    if patience:
        threshold = spec.training.get("early_stopping_threshold", 0.0)
        callbacks.append(EarlyStoppingCallback(patience, threshold))
    trainer = GuardedTrainer(
        model=prepared.model,
        args=args,
        train_dataset=prepared.data.splits["train"],
        eval_dataset=prepared.data.splits["validation"],
        processing_class=prepared.tokenizer,
        data_collator=DataCollatorWithPadding(prepared.tokenizer),
        compute_metrics=metrics,
        callbacks=callbacks,
    )
    trainer.remove_callback(PrinterCallback)  # it prints every log dict when tqdm is off
    if progress_bar is not None:
        trainer.remove_callback(ProgressCallback)
        trainer.add_callback(progress_bar)
    _reset_gpu_peak(prepared.hardware)
    started = time.perf_counter()
    try:
        resume = _replay_continued(continuation, recorder, sinks)
        train_output = trainer.train(resume_from_checkpoint=resume)
    except optuna.TrialPruned:
        return _pruned(prepared, trial_id, run_dir, recorder.rows, time.perf_counter() - started)
    best = _best_row(recorder.rows, trainer.state.best_global_step, spec)
    if best.predictions is None:  # the best evaluation was an interrupted try's
        best = replace(best, predictions=_validation_predictions(trainer, prepared, metrics))
    test = _evaluate_test(trainer, prepared)
    checkpoint = _keep_only_best(trainer, run_dir)
    wall = time.perf_counter() - started
    final = {
        **best.metrics,
        "eval_loss": best.eval_loss,
        "training_loss": best.training_loss,
        "epoch": best.epoch,
        "step": best.step,
        **best.details,
        **_noise(best, prepared),
    }
    if test is not None:
        final["test"] = test
    return TrialOutcome(
        trial_id=trial_id,
        state=TrialState.COMPLETED,
        objective=best.metric(spec.objective.metric),
        metrics=final,
        resources=_resources(prepared, train_output.metrics, wall, checkpoint, len(recorder.rows)),
        evaluations=list(recorder.rows),
        checkpoint=checkpoint,
    )


def _pruned(
    prepared: PreparedTrial, trial_id: int, run_dir: Path, rows: list[EvaluationRow], wall: float
) -> TrialOutcome:
    """A pruned trial keeps its evaluations and best-so-far score, but no checkpoint."""
    shutil.rmtree(run_dir, ignore_errors=True)
    best = _best_row(rows, None, prepared.spec)
    total, _ = count_parameters(prepared.model)
    resources = {
        "wall_time_s": round(wall, 3),
        "pruned_after_evaluations": len(rows),
        "parameters": total,
        "device": prepared.hardware.device_name,
        "peak_gpu_memory_bytes": _gpu_peak(prepared.hardware),
        "tokenization_cache_hit": prepared.data.cache_hit,
        "batch": batch_of(prepared.spec),
        "ray_resources": ray_assigned_resources(),
    }
    return TrialOutcome(
        trial_id=trial_id,
        state=TrialState.PRUNED,
        objective=best.metric(prepared.spec.objective.metric),
        metrics={
            **best.metrics,
            "eval_loss": best.eval_loss,
            "epoch": best.epoch,
            **_noise(best, prepared),
        },
        resources=resources,
        evaluations=list(rows),
    )


def run_job(job: TrialJob, sinks: list[Sink]) -> JobResult:
    """The transformer runner of a sweep job: the job's spec is already this trial's."""
    spec = job.trial_spec
    with Store(job.db_url) as store:
        outcome = run_trial(
            spec,
            dict(job.params),
            store,
            Path(job.home),
            progress=False,
            stage=job.stage,
            sinks=sinks,
            optuna_trial_number=job.optuna_number,
            trial_id=job.trial_id,
            callbacks=fault_callbacks(job.attempt),
            config_notes=job.config_notes,
            continue_from=job.continue_from,
        )
    return JobResult(
        optuna_number=job.optuna_number,
        state=outcome.state.value,
        objective=outcome.objective,
        trial_id=outcome.trial_id,
        epochs_run=len(outcome.evaluations),
        max_epochs=int(float(spec.training.get("num_train_epochs", 3))),
        error=outcome.error,
        failure_kind=outcome.failure_kind,
    )


def _best_row(rows: list[EvaluationRow], best_step: int | None, spec: SweepSpec) -> EvaluationRow:
    if not rows:
        raise RuntimeError("training finished without a single evaluation")
    for row in rows:
        if row.step == best_step:
            return row
    sign = 1.0 if spec.objective.maximize else -1.0
    return max(rows, key=lambda r: sign * (r.metric(spec.objective.metric) or float("-inf")))


def _replay_continued(
    continuation: Continuation | None, recorder: EvaluationRecorder, sinks: list[Sink]
) -> str | None:
    """The interrupted try's evaluations onto this row (store, W&B, pruner) before
    training goes on from its checkpoint; the checkpoint path for Trainer, or None."""
    if continuation is None:
        return None
    for row in continuation.rows:
        recorder.rows.append(row)
        for sink in sinks:
            sink(row)
    return str(continuation.checkpoint)


def _validation_predictions(
    trainer: Any, prepared: PreparedTrial, metrics: ClassificationMetrics
) -> ValidationPredictions | None:
    """The loaded best checkpoint's validation predictions, evaluated again: a continued
    trial's best may be an evaluation whose rows died with the interrupted worker. The
    trainer's own `compute_metrics` keeps them, as it does for every evaluation."""
    trainer.predict(prepared.data.splits["validation"], metric_key_prefix="again")
    return metrics.last_predictions


def _noise(best: EvaluationRow, prepared: PreparedTrial) -> dict[str, Any]:
    """The best checkpoint's predictions, its objective's interval and, for a trial that
    learnt nothing, why (workers.noise); stored once, on the trial, not per evaluation."""
    metric = prepared.spec.objective.metric
    return evaluation_noise(best.predictions, metric, prepared.data.label_names)


def _evaluate_test(trainer: Any, prepared: PreparedTrial) -> dict[str, Any] | None:
    """The held-out test split is scored once, with the best checkpoint only."""
    test = prepared.data.test
    if test is None:
        return None
    output = trainer.predict(test, metric_key_prefix="test")
    labels = output.label_ids
    predicted = (
        output.predictions[0] if isinstance(output.predictions, tuple) else output.predictions
    )
    scores, details = classification_scores(
        labels, predicted.argmax(axis=-1), prepared.data.label_names
    )
    return {**scores, "loss": float(output.metrics.get("test_loss", float("nan"))), **details}


def _keep_only_best(trainer: Any, run_dir: Path) -> Path:
    best_dir = run_dir / "best"
    trainer.save_model(str(best_dir))
    shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)
    return best_dir


def _resources(
    prepared: PreparedTrial,
    train_metrics: dict[str, Any],
    wall: float,
    checkpoint: Path,
    evaluations: int,
) -> dict[str, Any]:
    total, trainable = count_parameters(prepared.model)
    return {
        "wall_time_s": round(wall, 3),
        "train_runtime_s": train_metrics.get("train_runtime"),
        "train_samples_per_second": train_metrics.get("train_samples_per_second"),
        "peak_gpu_memory_bytes": _gpu_peak(prepared.hardware),
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "parameters": total,
        "trainable_parameters": trainable,
        "checkpoint_bytes": sum(f.stat().st_size for f in checkpoint.rglob("*") if f.is_file()),
        "device": prepared.hardware.device_name,
        "evaluations": evaluations,
        "tokenization_cache_hit": prepared.data.cache_hit,
        "batch": batch_of(prepared.spec),
        "ray_resources": ray_assigned_resources(),
    }


def batch_of(spec: SweepSpec) -> dict[str, int]:
    """The batch the trial really trains with: after an OOM retry it is not the spec's."""
    return Batch.of(spec.training).to_dict()


def _flat_config(config: dict[str, Any]) -> dict[str, Any]:
    flat = {k: v for k, v in config.items() if k not in ("training", "dataset", "model_args")}
    return {
        **flat,
        **config["training"],
        **config["model_args"],
        "dataset": config["dataset"].get("path"),
        "dataset_name": config["dataset"].get("name"),
    }


def _seed_everything(seed: int) -> None:
    from transformers import set_seed

    set_seed(seed)


def _reset_gpu_peak(hardware: Hardware) -> None:
    if hardware.cuda:
        import torch

        torch.cuda.reset_peak_memory_stats()


def _gpu_peak(hardware: Hardware) -> int | None:
    if not hardware.cuda:
        return None
    import torch

    return int(torch.cuda.max_memory_allocated())
