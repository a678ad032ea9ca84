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
        if _run_stage(run, stage) == "cancelled":
            run.store.set_stage_state(name, stage.name, SweepState.CANCELLED)
            return SweepState.CANCELLED  # `sweepctl cancel` already moved the sweep itself
        summary = _stage_summary(run, stage)
        run.store.set_stage_state(name, stage.name, SweepState.COMPLETED, summary=summary)
        run.on_event("stage_completed", {"stage": stage.name, "summary": summary})
    run.store.set_sweep_state(name, SweepState.COMPLETED)
    return SweepState.COMPLETED


def _restore_report(run: SweepRun, stage: StageSpec) -> None:
    if stage.strategy == "ofat":
        names = stage_parameter_names(stage, run.spec, run.reports)
        run.reports[stage.name] = analyze_ofat(run.spec, run.study, stage.name, names)


def _stage_summary(run: SweepRun, stage: StageSpec) -> dict[str, Any]:
    trials = stage_trials(run.study, stage.name)
    summary: dict[str, Any] = {
        "trials": len(trials),
        "finished": sum(finished_ok(t) for t in trials),
    }
    if stage.strategy == "ofat":
        _restore_report(run, stage)
        summary["ofat"] = run.reports[stage.name].to_dict()
    return summary


class StageProposer:
    """The next trial of a stage: a fixed configuration to enqueue, or a sampler's pick."""

    def __init__(self, run: SweepRun, stage: StageSpec) -> None:
        self.run, self.stage = run, stage
        self.space = distributions(run.spec)
        names = stage_parameter_names(stage, run.spec, run.reports)
        base = baseline(run.spec)
        fixed = {k: v for k, v in best_params(run.study, base).items() if k not in names}
        self.queue: list[Proposal] = []
        self.left = 0
        if stage.strategy == "ofat":
            self.queue = remaining(
                ofat_proposals(run.spec, stage, names, base), run.study, stage.name
            )
        elif stage.strategy == "grid":
            start = {**base, **fixed}
            self.queue = remaining(
                grid_proposals(run.spec, stage, names, start), run.study, stage.name
            )
        else:
            done = sum(finished_ok(t) for t in stage_trials(run.study, stage.name))
            self.left = max(0, (stage.n_trials or 0) - done)
            self.sampler = make_sampler(stage, fixed, run.spec.seed)

    def has_next(self) -> bool:
        return bool(self.queue) or self.left > 0

    def ask(self) -> tuple[optuna.Trial, int]:
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
        self.left -= 1
        study.sampler = self.sampler
        trial = study.ask(self.space)
        trial.set_user_attr(STAGE_ATTR, self.stage.name)
        return trial, 0


def _run_stage(run: SweepRun, stage: StageSpec) -> str:
    proposer = StageProposer(run, stage)
    limit = run.spec.resources.max_concurrent_trials
    pruning = {} if stage.strategy == "ofat" else run.spec.pruning.model_dump()
    spec_dict = spec_to_dict(run.spec)  # the same for every job of the stage
    while True:
        while run.backend.running < limit and proposer.has_next():
            trial, repeat = proposer.ask()
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
            return "done"
        for result in run.backend.poll(timeout=0.5):
            _tell(run.study, result)
            run.on_event("trial_finished", {"stage": stage.name, "result": result})
        if run.store.get_sweep(run.spec.name).state == SweepState.CANCELLED:
            _cancel(run)
            return "cancelled"


def _tell(study: optuna.Study, result: JobResult) -> None:
    states = optuna.trial.TrialState
    if result.state == "COMPLETED" and result.objective is not None:
        study.tell(result.optuna_number, result.objective, skip_if_finished=True)
    elif result.state == "PRUNED":
        study.tell(result.optuna_number, state=states.PRUNED, skip_if_finished=True)
    else:
        study.tell(result.optuna_number, state=states.FAIL, skip_if_finished=True)


def _cancel(run: SweepRun) -> None:
    for number in run.backend.stop_all():
        run.study.tell(number, state=optuna.trial.TrialState.FAIL, skip_if_finished=True)
    run.store.fail_running_trials(run.spec.name, CANCEL_REASON)
