"""One fine-tuning trial, from a validated spec plus overrides to a stored result.

prepare (model, tokenizer, data, labels)   <- every bad-input error happens here,
    |                                         before the store is touched
store.create_trial            PENDING
store.set_trial_state         RUNNING
    |  Trainer: one evaluation row per epoch -> store, W&B, console
    |  early stopping; the best checkpoint is loaded back at the end
best checkpoint saved, per-epoch checkpoints deleted, test split evaluated once
store.set_trial_state         COMPLETED (objective, metrics, resources)
                           or FAILED    (NaN/inf loss, crash: reason + traceback)
"""

from __future__ import annotations

import resource
import shutil
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna

from sweepctl.spec.models import SweepSpec, spec_to_dict
from sweepctl.storage import EvaluationRecord, Store, TrialState
from sweepctl.workers.arguments import Hardware, training_arguments
from sweepctl.workers.data import PreparedData, dataset_seed, prepare_data
from sweepctl.workers.job import JobResult, TrialJob, failure_kind_of
from sweepctl.workers.metrics import ClassificationMetrics, classification_scores
from sweepctl.workers.models import (
    count_parameters,
    load_classifier,
    load_config,
    load_tokenizer,
    resolve_model_source,
)
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
) -> TrialOutcome:
    """``trial_id``: the PENDING row a sweep's orchestrator made for this trial; without
    one (`sweepctl trial`) the row is created here, after every bad-input check passed."""
    prepared = prepare_trial(spec, params, home)
    config = resolved_config(prepared)
    if trial_id is None:
        trial_id = store.create_trial(
            spec.name,
            spec_to_dict(spec),
            params,
            config,
            stage=stage,
            optuna_trial_number=optuna_trial_number,
        )
    store.set_trial_state(trial_id, TrialState.RUNNING, config=config)
    run_dir = home / "runs" / spec.name / f"trial-{trial_id}"
    tracker: WandbTracker | None = None
    try:
        tracker = WandbTracker(
            spec.tracking.wandb,
            spec.name,
            f"{spec.name}-trial-{trial_id}",
            {**_flat_config(config), "trial_id": trial_id, "params": params},
            home,
        )
        if tracker.run_path:
            store.add_artifact(trial_id, "wandb_run", tracker.run_path)
        store_sink = _store_sink(store, trial_id)
        outcome = _train(
            prepared,
            trial_id,
            run_dir,
            [store_sink, tracker.log_evaluation, *(sinks or [])],
            progress,
        )
    except KeyboardInterrupt:
        store.set_trial_state(trial_id, TrialState.CANCELLED, error="interrupted by the user")
        if tracker is not None:
            tracker.finish({"state": "CANCELLED"}, failed=True)
        raise
    except Exception as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        kind = failure_kind_of(exc)
        _fail(store, trial_id, tracker, reason, traceback.format_exc(), kind)
        return TrialOutcome(
            trial_id,
            TrialState.FAILED,
            None,
            {},
            {},
            error=reason,
            wandb_run=tracker.run_path if tracker else None,
            failure_kind=kind,
        )
    if outcome.checkpoint is not None:
        size = outcome.resources["checkpoint_bytes"]
        store.add_artifact(trial_id, "checkpoint", str(outcome.checkpoint), size)
    store.set_trial_state(
        trial_id,
        outcome.state,
        objective=outcome.objective,
        metrics=outcome.metrics,
        resources=outcome.resources,
    )
    tracker.finish({**_summary(outcome)}, failed=False)
    return TrialOutcome(**{**outcome.__dict__, "wandb_run": tracker.run_path})


def _train(
    prepared: PreparedTrial, trial_id: int, run_dir: Path, sinks: list[Sink], progress: bool
) -> TrialOutcome:
    from transformers import DataCollatorWithPadding, EarlyStoppingCallback, TrainingArguments
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    spec = prepared.spec
    args = TrainingArguments(
        **training_arguments(spec, run_dir / "checkpoints", prepared.hardware, progress)
    )
    metrics = ClassificationMetrics(prepared.data.label_names)
    progress_bar = EpochProgress() if progress else None
    if progress_bar is not None:
        sinks = [*sinks, progress_bar.print_row]
    recorder = EvaluationRecorder(metrics, sinks)
    callbacks: list[Any] = [recorder]
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
        train_output = trainer.train()
    except optuna.TrialPruned:
        return _pruned(prepared, trial_id, run_dir, recorder.rows, time.perf_counter() - started)
    best = _best_row(recorder.rows, trainer.state.best_global_step, spec)
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
    }
    return TrialOutcome(
        trial_id=trial_id,
        state=TrialState.PRUNED,
        objective=best.metric(prepared.spec.objective.metric),
        metrics={**best.metrics, "eval_loss": best.eval_loss, "epoch": best.epoch},
        resources=resources,
        evaluations=list(rows),
    )


def run_job(job: TrialJob, sinks: list[Sink]) -> JobResult:
    """The transformer runner of a sweep job (see workers.job)."""
    from sweepctl.spec.overrides import apply_overrides

    base = SweepSpec.model_validate(job.spec)
    params = dict(job.params)
    if job.seed_offset:
        params["seed"] = base.seed + job.seed_offset
    spec = apply_overrides(base, params)
    store = Store(job.db_url)
    try:
        outcome = run_trial(
            spec,
            params,
            store,
            Path(job.home),
            progress=False,
            stage=job.stage,
            sinks=sinks,
            optuna_trial_number=job.optuna_number,
            trial_id=job.trial_id,
        )
    finally:
        store.close()
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
    }


def _store_sink(store: Store, trial_id: int) -> Sink:
    def record(row: EvaluationRow) -> None:
        store.record_evaluation(
            trial_id,
            EvaluationRecord(
                epoch=row.epoch,
                step=row.step,
                training_loss=row.training_loss,
                eval_loss=row.eval_loss,
                accuracy=row.metrics.get("accuracy"),
                f1=row.metrics.get("f1"),
                precision=row.metrics.get("precision"),
                recall=row.metrics.get("recall"),
                learning_rate=row.learning_rate,
                grad_norm=row.grad_norm,
                metrics={**row.metrics, **row.details},
            ),
        )

    return record


def _fail(
    store: Store, trial_id: int, tracker: WandbTracker | None, reason: str, trace: str, kind: str
) -> None:
    store.set_trial_state(
        trial_id, TrialState.FAILED, error=reason, traceback=trace, failure_kind=kind
    )
    if tracker is not None:
        tracker.finish({"state": "FAILED", "error": reason}, failed=True)


def _summary(outcome: TrialOutcome) -> dict[str, Any]:
    scalars = {k: v for k, v in outcome.metrics.items() if isinstance(v, (int, float))}
    return {
        "state": outcome.state.value,
        "objective": outcome.objective,
        **scalars,
        **{f"resources/{k}": v for k, v in outcome.resources.items()},
    }


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
