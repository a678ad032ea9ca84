"""Early stopping of poor trials with Optuna's own pruners, from inside the worker.

The worker reports the objective after each evaluation to its Optuna trial (through the
sweep's study storage, the same SQL database) and asks the pruner; a pruned trial raises
`optuna.TrialPruned`, which the runner turns into a PRUNED trial. OFAT trials are never
pruned: screening compares full-budget runs against the baseline.

The study is loaded once per worker process and sweep (`_study_for`), not per trial:
`optuna.load_study` builds a storage (engine + schema check, ~40 ms on SQLite), and the
loaded study's cached storage re-reads only unfinished and new trials, where a fresh one
reads every trial with its curve each time the pruner asks (ASHA asks after every report).
Optuna's pruners keep their state in the study, so reusing one across trials is safe.
"""

from __future__ import annotations

import json
import warnings
from typing import Any

import optuna

from sweepctl.spec.plan import PruningSpec
from sweepctl.storage import optuna_storage
from sweepctl.storage.optuna_adapter import live_trial
from sweepctl.workers.job import TrialJob


def make_pruner(pruning: PruningSpec) -> optuna.pruners.BasePruner:
    """The spec's `pruning` as an Optuna pruner; with `patience`, wrapped in PatientPruner."""
    pruner = _base_pruner(pruning)
    if pruning.patience is None or isinstance(pruner, optuna.pruners.NopPruner):
        return pruner
    with warnings.catch_warnings():  # "experimental" since Optuna 2.8, stable in use
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.pruners.PatientPruner(pruner, patience=pruning.patience)


def _base_pruner(pruning: PruningSpec) -> optuna.pruners.BasePruner:
    min_epochs, factor = pruning.min_epochs, pruning.reduction_factor
    if pruning.algorithm == "median":
        return optuna.pruners.MedianPruner(
            n_startup_trials=3, n_warmup_steps=min_epochs - 1, n_min_trials=pruning.min_trials
        )
    if pruning.algorithm == "asha":
        return optuna.pruners.SuccessiveHalvingPruner(
            min_resource=min_epochs, reduction_factor=factor
        )
    if pruning.algorithm == "hyperband":
        # "auto": the budget is taken from the first finished trial, which also fits replayed
        # curves whose length is not num_train_epochs
        return optuna.pruners.HyperbandPruner(
            min_resource=min_epochs, max_resource="auto", reduction_factor=factor
        )
    return optuna.pruners.NopPruner()


class OptunaPruningSink:
    """A recorder sink: report each evaluation's objective, stop if the pruner says so."""

    def __init__(self, trial: optuna.Trial, metric: str, min_epochs: int) -> None:
        self.trial = trial
        self.metric = metric
        self.min_epochs = min_epochs
        self.step = 0

    @classmethod
    def for_job(cls, job: TrialJob) -> OptunaPruningSink:
        if job.pruning is None:
            raise ValueError("a pruning sink needs the job's pruning and its Optuna trial")
        trial = live_trial(_study_for(job, job.pruning), job.optuna_number)
        return cls(trial, job.trial_spec.objective.metric, job.pruning.min_epochs)

    def __call__(self, row: Any) -> None:
        self.step += 1
        value = row.metric(self.metric)
        if value is None:
            return
        self.trial.report(float(value), self.step)
        if self.step >= self.min_epochs and self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned after evaluation {self.step}")


_CACHED: dict[str, optuna.Study] = {}


def _study_for(job: TrialJob, pruning: PruningSpec) -> optuna.Study:
    """One cached study per process: a new sweep (or database) replaces the old one."""
    key = json.dumps([job.db_url, job.sweep, pruning.model_dump()], sort_keys=True)
    study = _CACHED.get(key)
    if study is None:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        storage = optuna_storage(job.db_url)
        pruner = make_pruner(pruning)
        study = optuna.load_study(study_name=job.sweep, storage=storage, pruner=pruner)
        _CACHED.clear()
        _CACHED[key] = study
    return study
