"""The one path a trial's row takes, for every runner: transformer, replay, noop and any
`python:` function.

    created (or the orchestrator's PENDING row adopted)
      -> RUNNING (with the resolved config)
      -> one evaluation row per evaluation, store first, then the sinks
      -> exactly one end state: COMPLETED | PRUNED with its results,
         FAILED with reason, traceback and kind when the body raised,
         CANCELLED on Ctrl-C (re-raised, so the process still stops)

Why one helper: each runner used to write this sequence itself, and each copy was a place
where a failure could leave a RUNNING row nobody owns. An exception inside the block ends
the trial FAILED and is kept on `trial.failure` instead of propagating: one bad
configuration must not take the worker, or the sweep, down with it.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sweepctl.storage import EvaluationRecord, Store, TrialState
from sweepctl.workers.job import failure_kind_of, first_line
from sweepctl.workers.noise import summary_fields
from sweepctl.workers.rows import EvaluationRow, Sink

INTERRUPTED = "interrupted by the user"
UNFINISHED = "the runner returned without an end state"


@dataclass(frozen=True)
class NewTrial:
    """What creating a row needs when no orchestrator made one (`sweepctl trial`)."""

    sweep: str
    spec: dict[str, Any]
    params: dict[str, Any]
    stage: str | None = None
    optuna_number: int | None = None


@dataclass(frozen=True)
class Failure:
    reason: str
    traceback: str
    kind: str


@dataclass
class LiveTrial:
    store: Store
    id: int
    sinks: list[Sink] = field(default_factory=list)
    on_end: list[Callable[[TrialState, dict[str, Any]], None]] = field(default_factory=list)
    state: TrialState = TrialState.RUNNING
    failure: Failure | None = None

    def record(self, row: EvaluationRow) -> None:
        """Store the row, then hand it to the sinks: a pruning sink that raises
        TrialPruned leaves exactly the evaluations it saw."""
        self.store.record_evaluation(self.id, evaluation_record(row))
        for sink in self.sinks:
            sink(row)

    def finish(
        self,
        state: TrialState,
        *,
        objective: float | None,
        metrics: dict[str, Any],
        resources: dict[str, Any],
    ) -> None:
        self.store.set_trial_state(
            self.id, state, objective=objective, metrics=metrics, resources=resources
        )
        # W&B's summary: scalars, the interval's bounds and the degenerate reason; never the
        # confusion matrix or the stored predictions
        scalars = {k: v for k, v in metrics.items() if isinstance(v, (int, float))}
        scalars |= summary_fields(metrics)
        resource_keys = {f"resources/{k}": v for k, v in resources.items()}
        self._ended(state, {"objective": objective, **scalars, **resource_keys})

    def _fail(self, exc: BaseException) -> None:
        self._record_failure(Failure(first_line(exc), traceback.format_exc(), failure_kind_of(exc)))

    def _record_failure(self, failure: Failure) -> None:
        self.store.set_trial_state(
            self.id,
            TrialState.FAILED,
            error=failure.reason,
            traceback=failure.traceback,
            failure_kind=failure.kind,
        )
        self.failure = failure
        self._ended(TrialState.FAILED, {"error": failure.reason})

    def _ended(self, state: TrialState, summary: dict[str, Any]) -> None:
        self.state = state
        for callback in self.on_end:
            callback(state, summary)


@contextmanager
def trial_lifecycle(
    store: Store,
    config: dict[str, Any],
    *,
    trial_id: int | None = None,
    new: NewTrial | None = None,
) -> Iterator[LiveTrial]:
    """Adopt `trial_id`, or create the row from `new`; see the module docstring."""
    if trial_id is None:
        if new is None:
            raise ValueError("trial_lifecycle needs a trial_id or a NewTrial")
        trial_id = store.create_trial(
            new.sweep,
            new.spec,
            new.params,
            config,
            stage=new.stage,
            optuna_trial_number=new.optuna_number,
        )
    store.set_trial_state(trial_id, TrialState.RUNNING, config=config)
    trial = LiveTrial(store, trial_id)
    try:
        yield trial
    except KeyboardInterrupt:
        store.set_trial_state(trial_id, TrialState.CANCELLED, error=INTERRUPTED)
        trial._ended(TrialState.CANCELLED, {"error": INTERRUPTED})
        raise
    except Exception as exc:  # the trial fails, the worker does not
        trial._fail(exc)
    else:
        if trial.state is TrialState.RUNNING:  # a runner bug must not leave a RUNNING row
            trial._record_failure(Failure(UNFINISHED, "", "error"))


def evaluation_record(row: EvaluationRow) -> EvaluationRecord:
    return EvaluationRecord(
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
    )
