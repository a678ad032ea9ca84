"""Running a staged sweep: stages in order, trials asked from the study, placed on a
backend, told back.

    launch ─► sweep RUNNING ─► for each stage (skipping COMPLETED ones on resume):
                 stage RUNNING
                 propose (OFAT/grid: enqueue fixed points; random/bayes: Optuna sampler)
                 keep up to max_concurrent_trials in flight; tell each result to Optuna
                 stage COMPLETED (+ summary: the OFAT ranking)
              ─► sweep COMPLETED  (or CANCELLED when `sweepctl cancel` flips its state)

The orchestrator holds no per-status lists of its own: the study and the store are the
state, which is what makes `resume` after a crash simple — trials left RUNNING are marked
FAILED in both, and every stage recomputes what is still to do from them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import optuna

from orchestrator.backends import ExecutionBackend
from orchestrator.plan_spec import StageSpec
from orchestrator.reuse import (
    KnownConfigs,
    config_key,
    copy_result,
    in_space,
    is_reused,
    space_size,
)
from orchestrator.search import (
    REPEAT_ATTR,
    STAGE_ATTR,
    baseline,
    best_params,
    distributions,
    finished_ok,
    open_study,
    stage_trials,
)
from orchestrator.spec import SweepSpec, spec_to_dict
from orchestrator.strategies import (
    OfatReport,
    Proposal,
    analyze_ofat,
    grid_proposals,
    make_sampler,
    ofat_proposals,
    remaining,
    stage_parameter_names,
)
from storage import Store, SweepState
from workers.job import JobResult, TrialJob

CRASH_REASON = "the orchestrator stopped while this trial ran; retried on resume"
CANCEL_REASON = "cancelled by sweepctl cancel"
Event = Callable[[str, dict[str, Any]], None]


@dataclass
class SweepRun:
    spec: SweepSpec
    store: Store
    backend: ExecutionBackend
    db_url: str
    home: str
    runner: str = "transformer"
    on_event: Event = lambda kind, data: None
    study: optuna.Study = field(init=False)
    reports: dict[str, OfatReport] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.study = open_study(self.spec, self.db_url)


def launch(run: SweepRun) -> SweepState:
    """A new sweep: its rows first (refused if the name exists), then the stages."""
    stages = [(s.name, s.strategy) for s in run.spec.stages]
    run.store.create_sweep(run.spec.name, spec_to_dict(run.spec), stages)
    return _run(run)


def start(run: SweepRun) -> SweepState:
    """A sweep whose rows already exist as PENDING: one queued by `sweepctl serve`."""
    return _run(run)


def resume(run: SweepRun) -> SweepState:
    """Continue where the sweep stopped: completed trials are kept, interrupted ones retried."""
    _recover(run)
    return _run(run)


def _recover(run: SweepRun) -> None:
    """Bring the study and the store back in line after a crash. A trial the worker had
    finished but the dead orchestrator never told Optuna about is told now (re-running it
    would duplicate it); everything else that was in flight becomes FAILED and is retried."""
    states = optuna.trial.TrialState
    in_flight = (states.RUNNING, states.WAITING)
    for trial in run.study.get_trials(deepcopy=False, states=in_flight):
        stored = run.store.trial_by_optuna_number(run.spec.name, trial.number)
        if trial.state is states.RUNNING and stored is not None and stored.state.is_finished:
            _tell(run.study, _stored_result(trial.number, stored))
        else:
            run.study._storage.set_trial_state_values(trial._trial_id, states.FAIL)
    failed = run.store.fail_running_trials(run.spec.name, CRASH_REASON)
    run.on_event("recovered", {"failed_trials": failed})


def _stored_result(number: int, stored: Any) -> JobResult:
    return JobResult(number, stored.state.value, objective=stored.objective, trial_id=stored.id)


def _run(run: SweepRun) -> SweepState:
    name = run.spec.name
    run.store.set_sweep_state(name, SweepState.RUNNING)
    done = {s.name for s in run.store.get_sweep(name).stages if s.state == SweepState.COMPLETED}
    for stage in run.spec.stages:
        if stage.name in done:
            _restore_report(run, stage)
            continue
        run.store.set_stage_state(name, stage.name, SweepState.RUNNING)
        outcome, proposer = _run_stage(run, stage)
        if outcome == "cancelled":
            run.store.set_stage_state(name, stage.name, SweepState.CANCELLED)
            return SweepState.CANCELLED  # `sweepctl cancel` already moved the sweep itself
        summary = _stage_summary(run, stage, proposer.ended_by)
        run.store.set_stage_state(name, stage.name, SweepState.COMPLETED, summary=summary)
        run.on_event("stage_completed", {"stage": stage.name, "summary": summary})
    run.store.set_sweep_state(name, SweepState.COMPLETED)
    return SweepState.COMPLETED


def _restore_report(run: SweepRun, stage: StageSpec) -> None:
    if stage.strategy == "ofat":
        names = stage_parameter_names(stage, run.spec, run.reports)
        run.reports[stage.name] = analyze_ofat(run.spec, run.study, stage.name, names)


def _stage_summary(run: SweepRun, stage: StageSpec, ended_by: str) -> dict[str, Any]:
    """`trials` counts Optuna trials; `reused` of them were answered from an earlier run of
    the same configuration instead of training it again; `ended_by` says why a sampled
    stage stopped (n_trials, exhausted: every configuration of its space is known, or
    repeats: the sampler proposed only known configurations MAX_REPEAT_STREAK times)."""
    trials = stage_trials(run.study, stage.name)
    summary: dict[str, Any] = {
        "trials": len(trials),
        "finished": sum(finished_ok(t) for t in trials),
        "reused": sum(finished_ok(t) and is_reused(t) for t in trials),
        "ended_by": ended_by,
    }
    if stage.strategy == "ofat":
        _restore_report(run, stage)
        summary["ofat"] = run.reports[stage.name].to_dict()
    return summary


MAX_REPEAT_STREAK = 50  # sampled proposals in a row that were all known: the stage ends


class StageProposer:
    """The next trial of a stage: a fixed configuration to enqueue, or a sampler's pick.
    A configuration the sweep already ran is answered from that run (orchestrator.reuse)."""

    def __init__(self, run: SweepRun, stage: StageSpec) -> None:
        self.run, self.stage = run, stage
        self.space = distributions(run.spec)
        self.names = stage_parameter_names(stage, run.spec, run.reports)
        base = baseline(run.spec)
        self.fixed = {k: v for k, v in best_params(run.study, base).items() if k not in self.names}
        self.known = KnownConfigs.of(run.study)
        self.queue: list[Proposal] = []
        self.left = 0
        self.streak = 0  # consecutive proposals that were already known
        self.ended_by = "plan"
        self.size: int | None = None
        if stage.strategy == "ofat":
            self.queue = remaining(
                ofat_proposals(run.spec, stage, self.names, base), run.study, stage.name
            )
        elif stage.strategy == "grid":
            start = {**base, **self.fixed}
            self.queue = remaining(
                grid_proposals(run.spec, stage, self.names, start), run.study, stage.name
            )
        else:
            trials = stage_trials(run.study, stage.name)
            done = sum(finished_ok(t) and not is_reused(t) for t in trials)
            self.left = max(0, (stage.n_trials or 0) - done)
            self.sampler = make_sampler(stage, self.fixed, run.spec.seed)
            self.ended_by = "n_trials"
            self.size = space_size({n: self.space[n] for n in self.names})

    def has_next(self) -> bool:
        if self.queue:
            return True
        if self.left <= 0:
            return False
        if self.streak >= MAX_REPEAT_STREAK:
            self.ended_by = "repeats"
            return False
        if self.size is not None and self._seen_in_space() >= self.size:
            self.ended_by = "exhausted"
            return False
        return True

    def _seen_in_space(self) -> int:
        """Configurations of this stage's subspace (searched values, the rest pinned)
        that are finished or in flight: when that is all of them, nothing is left."""
        keys = {*self.known.finished, *self.known.in_flight}
        return sum(repeat == 0 and self._pinned(dict(items)) for repeat, items in keys)

    def _pinned(self, params: dict[str, Any]) -> bool:
        pinned = all(params.get(k) == v for k, v in self.fixed.items())
        return pinned and all(in_space(self.space[n], params.get(n)) for n in self.names)

    def ask(self) -> tuple[optuna.Trial, int] | None:
        """A trial to launch, or None when the proposal was answered without a worker."""
        trial, repeat = self._ask()
        key = config_key(trial.params, repeat)
        source = self.known.source(key, allow_pruned=self.stage.strategy != "ofat")
        if source is not None:
            copy_result(self.run.study, trial, source)
            self._reused(trial, source.number)
            return None
        if key in self.known.in_flight:
            self._reused(trial, self.known.wait_for(key, trial))
            return None
        self.streak = 0
        if self.stage.strategy in ("random", "bayes"):
            self.left -= 1  # n_trials counts trainings: a reused answer is free
        self.known.launched(key, trial.number)
        return trial, repeat

    def _ask(self) -> tuple[optuna.Trial, int]:
        study = self.run.study
        if self.queue:
            proposal = self.queue.pop(0)
            attrs = {
                STAGE_ATTR: self.stage.name,
                "sweepctl_config": proposal.key,
                REPEAT_ATTR: proposal.repeat,
            }
            study.enqueue_trial(proposal.params, user_attrs=attrs)
            return study.ask(self.space), proposal.repeat
        study.sampler = self.sampler
        trial = study.ask(self.space)
        trial.set_user_attr(STAGE_ATTR, self.stage.name)
        return trial, 0

    def _reused(self, trial: optuna.Trial, source: int) -> None:
        self.streak += 1
        data = {"stage": self.stage.name, "number": trial.number, "source": source}
        self.run.on_event("trial_reused", {**data, "params": dict(trial.params)})


def _run_stage(run: SweepRun, stage: StageSpec) -> tuple[str, StageProposer]:
    proposer = StageProposer(run, stage)
    limit = run.spec.resources.max_concurrent_trials
    pruning = {} if stage.strategy == "ofat" else run.spec.pruning.model_dump()
    spec_dict = spec_to_dict(run.spec)  # the same for every job of the stage
    while True:
        while run.backend.running < limit and proposer.has_next():
            asked = proposer.ask()
            if asked is None:
                continue
            trial, repeat = asked
            job = TrialJob(
                sweep=run.spec.name,
                stage=stage.name,
                optuna_number=trial.number,
                params=dict(trial.params),
                spec=spec_dict,
                db_url=run.db_url,
                home=run.home,
                runner=run.runner,
                pruning=pruning,
                seed_offset=repeat,
            )
            run.backend.start(job)
            run.on_event(
                "trial_started", {"stage": stage.name, "number": trial.number, "params": job.params}
            )
        if run.backend.running == 0:
            return "done", proposer
        for result in run.backend.poll(timeout=0.5):
            _tell(run.study, result)
            proposer.known.settled(result.optuna_number)
            run.on_event("trial_finished", {"stage": stage.name, "result": result})
        if run.store.get_sweep(run.spec.name).state == SweepState.CANCELLED:
            _cancel(run, proposer)
            return "cancelled", proposer


def _tell(study: optuna.Study, result: JobResult) -> None:
    states = optuna.trial.TrialState
    if result.state == "COMPLETED" and result.objective is not None:
        study.tell(result.optuna_number, result.objective, skip_if_finished=True)
    elif result.state == "PRUNED":
        study.tell(result.optuna_number, state=states.PRUNED, skip_if_finished=True)
    else:
        study.tell(result.optuna_number, state=states.FAIL, skip_if_finished=True)


def _cancel(run: SweepRun, proposer: StageProposer) -> None:
    proposer.known.abandon()
    for number in run.backend.stop_all():
        run.study.tell(number, state=optuna.trial.TrialState.FAIL, skip_if_finished=True)
    run.store.fail_running_trials(run.spec.name, CANCEL_REASON)
