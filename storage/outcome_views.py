"""Aggregate reads of how a sweep's trials came out, for the sweep-level diagnosis
(sweepctl.orchestrator.diagnosis): is every trial degenerate, did any beat the baseline,
and what training did the sweep give its model.

Why here and not a scan of TrialRecords: `status`, the dashboard's overview and the
export ask these on every read, and a sweep may hold 10,000 trials. Each read below is one
statement that returns a handful of rows whatever the sweep's size: counts, one trial's
noise, the few runs of the baseline configuration, and min/max of the stored training
settings, all read out of the JSON columns in SQL (never an evaluation row).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, func, select, type_coerce
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session, sessionmaker

from sweepctl.storage.models import Sweep, Trial
from sweepctl.storage.states import TrialState

__all__ = ["OutcomeCounts", "OutcomeViewMixin", "TrainingExtent", "TrialNoise"]

DEGENERATE = Trial.metrics["degenerate"].as_string()
_LOW = Trial.metrics[("objective_interval", "low")].as_float()
_HIGH = Trial.metrics[("objective_interval", "high")].as_float()
_COMPLETED = Trial.state == TrialState.COMPLETED


@dataclass(frozen=True)
class OutcomeCounts:
    """COMPLETED trials, how many of them are flagged degenerate (workers.noise), and the
    first flagged one as (trial id, reason), to name an example."""

    completed: int
    degenerate: int
    example: tuple[int, str] | None = None


@dataclass(frozen=True)
class TrialNoise:
    """One COMPLETED trial's score with its evaluation interval (None without stored
    predictions), its flag, and the true-label counts of its validation rows."""

    id: int
    number: int
    params: dict[str, Any]
    objective: float
    low: float | None
    high: float | None
    degenerate: str | None
    label_counts: list[int] | None = None
    label_names: list[str] | None = None

    @property
    def half_width(self) -> float | None:
        if self.low is None or self.high is None:
            return None
        return (self.high - self.low) / 2.0


@dataclass(frozen=True)
class TrainingExtent:
    """The range of training settings over a sweep's COMPLETED trials, as their stored
    TrainingArguments say (None where no trial stored one: replayed and custom runs).
    `batch_size` and `accumulation` are the smallest used, `train_rows` the most, so
    `max_steps_bound` is an upper bound on any trial's optimizer steps."""

    learning_rate: tuple[float, float] | None
    epochs: tuple[float, float] | None
    train_rows: int | None
    batch_size: int | None
    accumulation: int
    max_steps: int | None  # the largest explicit `max_steps` (> 0), which overrides epochs

    @property
    def max_steps_bound(self) -> int | None:
        if self.train_rows is None or self.batch_size is None or self.epochs is None:
            return self.max_steps
        per_epoch = -(-self.train_rows // (self.batch_size * self.accumulation))  # ceil
        by_epochs = int(per_epoch * self.epochs[1] + 0.999999)
        return max(by_epochs, self.max_steps or 0)


def _training(key: str) -> ColumnElement[float]:
    return Trial.config[("training", key)].as_float()


class OutcomeViewMixin:
    """The diagnosis reads of ``storage.Store``."""

    _read_session: sessionmaker[Session]

    if TYPE_CHECKING:

        def _errors(self, action: str = ...) -> AbstractContextManager[None]: ...

        @property
        def url(self) -> str: ...

    def outcome_counts(self, sweep_id: int) -> OutcomeCounts:
        mine = (Trial.sweep_id == sweep_id, _COMPLETED)
        counts = select(func.count(), func.count(DEGENERATE)).where(*mine)
        first = (
            select(Trial.id, DEGENERATE)
            .where(*mine, DEGENERATE.is_not(None))
            .order_by(Trial.number)
            .limit(1)
        )
        with self._errors(), self._read_session.begin() as session:
            completed, degenerate = session.execute(counts).one()
            example = session.execute(first).one_or_none()
        found = (int(example[0]), str(example[1])) if example is not None else None
        return OutcomeCounts(int(completed), int(degenerate), found)

    def trial_noise(self, trial_ids: Sequence[int]) -> list[TrialNoise]:
        """The given COMPLETED trials, in number order, with their confusion matrices."""
        if not trial_ids:
            return []
        query = self._noise_query().where(Trial.id.in_(list(trial_ids)))
        with self._errors(), self._read_session.begin() as session:
            return [_noise(row) for row in session.execute(query)]

    def best_run(self, sweep_id: int, maximize: bool) -> TrialNoise | None:
        """The best COMPLETED trial; the earlier one wins a tie (as `ranked_trials`)."""
        best = Trial.objective.desc() if maximize else Trial.objective.asc()
        query = (
            self._noise_query()
            .where(Trial.sweep_id == sweep_id)
            .order_by(None)
            .order_by(best, Trial.number)
            .limit(1)
        )
        with self._errors(), self._read_session.begin() as session:
            row = session.execute(query).one_or_none()
        return _noise(row) if row is not None else None

    def runs_with_params(self, sweep_id: int, params: dict[str, Any]) -> list[TrialNoise]:
        """COMPLETED trials whose params are exactly `params` (the baseline's runs: a few,
        however large the sweep). PostgreSQL matches with JSONB containment; SQLite
        compares each value read out of the JSON; both are checked again here."""
        query = self._noise_query().where(Trial.sweep_id == sweep_id)
        if self.url.startswith("postgresql"):
            query = query.where(type_coerce(Trial.params, JSONB).contains(params))
        else:
            query = query.where(*_sqlite_matches(params))
        with self._errors(), self._read_session.begin() as session:
            runs = [_noise(row) for row in session.execute(query)]
        return [run for run in runs if run.params == params]

    def training_extent(self, sweep_id: int) -> TrainingExtent:
        rows = Trial.config[("rows", "train")].as_float()
        query = select(
            func.min(_training("learning_rate")),
            func.max(_training("learning_rate")),
            func.min(_training("num_train_epochs")),
            func.max(_training("num_train_epochs")),
            func.max(rows),
            func.min(_training("per_device_train_batch_size")),
            func.min(_training("gradient_accumulation_steps")),
            func.max(_training("max_steps")),
        ).where(Trial.sweep_id == sweep_id, _COMPLETED)
        with self._errors(), self._read_session.begin() as session:
            lr_low, lr_high, ep_low, ep_high, train, batch, accumulate, steps = session.execute(
                query
            ).one()
        return TrainingExtent(
            learning_rate=_pair(lr_low, lr_high),
            epochs=_pair(ep_low, ep_high),
            train_rows=int(train) if train is not None else None,
            batch_size=int(batch) if batch else None,
            accumulation=max(1, int(accumulate or 1)),
            max_steps=int(steps) if steps is not None and steps > 0 else None,
        )

    def search_basis(self, sweep_id: int) -> dict[str, Any]:
        """The spec sections the baseline is read from (search_space, training, model_args,
        dataset.max_length), extracted in SQL: the rest of a stored spec stays unread."""
        spec = Sweep.spec
        query = select(
            spec["search_space"], spec["training"], spec["model_args"], spec["dataset"]
        ).where(Sweep.id == sweep_id)
        with self._errors(), self._read_session.begin() as session:
            row = session.execute(query).one_or_none()
        if row is None:
            return {}
        keys = ("search_space", "training", "model_args", "dataset")
        return {key: value for key, value in zip(keys, row, strict=True) if value is not None}

    def _noise_query(self) -> Any:
        return (
            select(
                Trial.id,
                Trial.number,
                Trial.params,
                Trial.objective,
                _LOW,
                _HIGH,
                DEGENERATE,
                Trial.metrics["confusion_matrix"],
                Trial.config["labels"],
            )
            .where(_COMPLETED, Trial.objective.is_not(None))
            .order_by(Trial.number)
        )


def _sqlite_matches(params: dict[str, Any]) -> list[ColumnElement[bool]]:
    """One comparison per value SQLite's JSON reads can compare exactly; anything else
    (None, lists) is left to the check in Python."""
    clauses: list[ColumnElement[bool]] = []
    for name, value in params.items():
        found = Trial.params[name]
        if isinstance(value, bool):
            clauses.append(found.as_boolean() == value)
        elif isinstance(value, (int, float)):
            clauses.append(found.as_float() == float(value))
        elif isinstance(value, str):
            clauses.append(found.as_string() == value)
    return clauses


def _pair(low: Any, high: Any) -> tuple[float, float] | None:
    return (float(low), float(high)) if low is not None and high is not None else None


def _noise(row: Any) -> TrialNoise:
    trial_id, number, params, objective, low, high, degenerate, matrix, labels = row
    counts = [int(sum(line)) for line in matrix] if isinstance(matrix, list) else None
    names = [str(name) for name in labels] if isinstance(labels, list) else None
    return TrialNoise(
        id=trial_id,
        number=number,
        params=dict(params or {}),
        objective=float(objective),
        low=low,
        high=high,
        degenerate=degenerate,
        label_counts=counts,
        label_names=names,
    )
