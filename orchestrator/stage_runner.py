"""One stage of a sweep: propose points, keep workers busy, settle every result.

propose (OFAT/grid: enqueue fixed points; random/bayes: Optuna sampler; retries first)
create the trial's PENDING row, start it on the backend
poll: a result, a dead worker (backend), a hung or overdue one (watchdog)
    -> settle: the store row is finished (by the worker, or here for a worker that
       could not), Optuna is told what the store says, a retryable failure with tries
       left goes back to the front of the queue as the next attempt
the sweep was cancelled elsewhere -> stop everything, trials CANCELLED
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import optuna

from sweepctl.orchestrator.budget import BudgetGuard
from sweepctl.orchestrator.outcomes import ATTEMPT_ATTR, Outcome, tell
from sweepctl.orchestrator.proposals import Proposal
from sweepctl.orchestrator.reasons import CANCEL_REASON
from sweepctl.orchestrator.retries import (
    RetryPolicy,
    attempt_attrs,
    histories,
    retry_after,
    unsettled_tries,
)
from sweepctl.orchestrator.reuse import (
    KnownConfigs,
    config_key,
    copy_result,
    in_space,
    is_reused,
    space_size,
)
from sweepctl.orchestrator.run import SweepRun
from sweepctl.orchestrator.search import (
    REPEAT_ATTR,
    STAGE_ATTR,
    best_params,
    distributions,
    finished_ok,
    stage_trials,
)
from sweepctl.orchestrator.strategies import StageContext, strategy_named
from sweepctl.orchestrator.trial_jobs import (
    continuable_tries,
    trial_pruning,
    trial_spec,
    with_smaller_batch,
)
from sweepctl.orchestrator.watchdog import Watchdog, WatchdogThread
from sweepctl.spec.baseline import baseline
from sweepctl.spec.models import spec_to_dict
from sweepctl.spec.plan import PruningSpec, StageSpec
from sweepctl.storage import StateTransitionError, Store, StoreError, SweepState, TrialState
from sweepctl.workers.job import JobResult, TrialJob

log = logging.getLogger("sweepctl.stage")
ALONE_REASON = "ran out of memory sharing a device; retried on one of its own"
MAX_REPEAT_STREAK = 50  # sampled proposals in a row that were all known: the stage ends


class StageProposer:
    """The next trial of a stage: a retry, a fixed configuration to enqueue, or a sampler's
    pick. A configuration the sweep already ran is answered from that run
    (orchestrator.reuse); a point already settled is not proposed again
    (orchestrator.retries)."""

    def __init__(self, run: SweepRun, stage: StageSpec) -> None:
        self.run, self.stage = run, stage
        self.strategy = strategy_named(stage.strategy)
        self.policy = RetryPolicy.of(run.spec)
        self.space = distributions(run.spec)
        self.ctx = stage_context(run, stage)
        self.record = self._kept_plan()
        self.known = KnownConfigs.of(run.study)
        self.queue: list[Proposal] = self._unsettled(self.strategy.planned_points(self.ctx))
        self.left = 0
        self.streak = 0  # consecutive proposals that were already known
        self.ended_by = "plan"
        self.stop_reason: str | None = None  # a used-up budget ended the stage
        self.size: int | None = None
        self.sampler = self.strategy.sampler(self.ctx)
        if self.sampler is not None:
            trials = stage_trials(run.study, stage.name)
            done = sum(finished_ok(t) and not is_reused(t) for t in trials)
            self.left = max(0, (self.strategy.trial_budget(self.ctx) or 0) - done)
            self.queue += unsettled_tries(run.study, stage.name, self.policy)
            self.ended_by = "n_trials"
            self.size = space_size({n: self.space[n] for n in self.ctx.names})

    def _kept_plan(self) -> dict[str, Any]:
        """What the strategy needs to plan the same points after a crash, written to the
        stage summary before the first point starts; a resumed stage reads it back."""
        record = self.strategy.plan_record(self.ctx)
        if record and any(self.ctx.record.get(k) != v for k, v in record.items()):
            summary = {**self.ctx.record, **record}
            self.run.store.set_stage_state(
                self.run.spec.name, self.stage.name, SweepState.RUNNING, summary=summary
            )
            self.ctx = replace(self.ctx, record=summary)
        return record

    def _unsettled(self, proposals: list[Proposal]) -> list[Proposal]:
        """Points without a settled history, each numbered as its next attempt."""
        found = histories(self.run.study, self.stage.name)
        queue = []
        for proposal in proposals:
            history = found.get(config_key(proposal.params, proposal.repeat))
            if history is None:
                queue.append(proposal)
            elif not history.settled(self.policy):
                queue.append(history.next_try(proposal, self.policy))
        return queue

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
        pinned = all(params.get(k) == v for k, v in self.ctx.fixed.items())
        return pinned and all(in_space(self.space[n], params.get(n)) for n in self.ctx.names)

    def ask(self) -> tuple[optuna.Trial, Proposal] | None:
        """A trial to launch, or None when the proposal was answered without a worker."""
        trial, proposal = self._ask()
        key = config_key(trial.params, proposal.repeat)
        source = self.known.source(key, allow_pruned=self.strategy.reuses_pruned)
        if source is not None:
            copy_result(self.run.study, trial, source)
            self._reused(trial, source.number)
            return None
        if key in self.known.in_flight:
            self._reused(trial, self.known.wait_for(key, trial))
            return None
        self.streak = 0
        if proposal.role == "sampler":
            self.left -= 1  # n_trials counts trainings: reused answers and retries are free
        self.known.launched(key, trial.number)
        return trial, proposal

    def _ask(self) -> tuple[optuna.Trial, Proposal]:
        study = self.run.study
        if self.queue:
            proposal = self.queue.pop(0)
            attrs = {
                STAGE_ATTR: self.stage.name,
                REPEAT_ATTR: proposal.repeat,
                **attempt_attrs(proposal),
            }
            if proposal.role != "sampled":
                attrs["sweepctl_config"] = proposal.key
            study.enqueue_trial(proposal.params, user_attrs=attrs)
            return study.ask(self.space), proposal
        study.sampler = self.sampler
        trial = study.ask(self.space)
        trial.set_user_attr(STAGE_ATTR, self.stage.name)
        trial.set_user_attr(ATTEMPT_ATTR, 1)
        return trial, Proposal(dict(trial.params), "sampler")

    def queued_retries(self) -> set[int]:
        """Optuna numbers of failed tries whose next attempt waits in the queue."""
        return {p.retry_of for p in self.queue if p.retry_of is not None}

    def retry(self, outcome: Outcome) -> Proposal | None:
        """Put the next attempt of a failed point at the front of the queue, if any."""
        frozen = self.known.frozen(outcome.number)
        proposal = retry_after(self.run.study, self.stage.name, frozen, self.policy)
        if proposal is not None:
            self.queue.insert(0, proposal)
        return proposal

    def _reused(self, trial: optuna.Trial, source: int) -> None:
        self.streak += 1
        data = {"stage": self.stage.name, "number": trial.number, "source": source}
        self.run.on_event("trial_reused", {**data, "params": dict(trial.params)})


def stage_context(run: SweepRun, stage: StageSpec) -> StageContext:
    """The stage's context from the record: rankings, best values so far, the finished
    trials of the sweep and what the stage's summary already holds."""
    base = baseline(run.spec)
    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    history = run.study.get_trials(deepcopy=False, states=states)
    stored = {s.name: s.summary for s in run.store.get_sweep(run.spec.name).stages}
    best = best_params(run.study, base)
    record = stored.get(stage.name) or {}
    return StageContext.of(run.spec, stage, run.reports, base, best, history, record)


def run_stage(run: SweepRun, stage: StageSpec, lease: Any) -> tuple[str, StageProposer]:
    proposer = StageProposer(run, stage)
    # The watchdog reads through its own Store: a connection of the loop's may be the one
    # waiting on a frozen worker's lock.
    with (
        Store(run.db_url) as watch_store,
        WatchdogThread(
            Watchdog(watch_store, run.spec.name, run.spec.resources), run.backend
        ) as watchdog,
    ):
        return _drive(run, stage, proposer, lease, watchdog)


def _drive(
    run: SweepRun, stage: StageSpec, proposer: StageProposer, lease: Any, watchdog: WatchdogThread
) -> tuple[str, StageProposer]:
    limit = run.spec.resources.max_concurrent_trials
    pruning = trial_pruning(run.spec, proposer.strategy.prunable)
    spec_dict = spec_to_dict(run.spec)  # the sweep's record, the same for every trial
    outage = StoreOutage()
    guard = BudgetGuard(run.store, run.spec.name, run.spec.budget)
    unsettled: list[JobResult] = []  # results seen while the store was unreachable
    settled = False  # a trial ended since the budget was last asked
    while True:
        lease.check()
        busy = run.backend.running > 0 or proposer.has_next()
        if busy and not unsettled and _budget_stop(run, proposer, guard, settled, outage):
            return "stopped", proposer
        settled = False
        while not unsettled and run.backend.running < limit and proposer.has_next():
            asked = proposer.ask()
            if asked is not None:
                _start(run, stage, asked, spec_dict, pruning)
        idle = run.backend.running == 0
        if idle and not unsettled and not watchdog.busy:
            return "done", proposer
        unsettled += run.backend.poll(timeout=0.5)
        unsettled += watchdog.verdicts(wait_s=0.2 if idle else 0.0)
        settled = bool(unsettled)
        with outage.tolerated():
            while unsettled:
                settle(run, proposer, stage, unsettled[0])
                unsettled.pop(0)
            if run.store.get_sweep(run.spec.name).state == SweepState.CANCELLED:
                stop_trials(run, proposer, CANCEL_REASON)
                return "cancelled", proposer


def _budget_stop(
    run: SweepRun, proposer: StageProposer, guard: BudgetGuard, settled: bool, outage: StoreOutage
) -> bool:
    """A used-up budget (orchestrator.budget) stops a stage that still has work before
    anything more starts: trials in flight end CANCELLED with the reason, kept on the
    proposer. A stage with nothing left to run or wait for is done, not stopped."""
    reason = None
    with outage.tolerated():
        reason = guard.reason(settled, proposer.queued_retries())
    if reason is None:
        return False
    stop_trials(run, proposer, reason)
    proposer.stop_reason = reason
    return True


class StoreOutage:
    """A database restart or failover must not end a sweep of hours: while the store (or
    Optuna's storage, the same database) is unreachable the loop keeps its results and
    tries again each second. After OUTAGE_LIMIT_S without a successful pass it gives up
    with the store's own one-line error, and `sweepctl resume` continues later."""

    OUTAGE_LIMIT_S = 120.0

    def __init__(self) -> None:
        self.since: float | None = None

    @contextlib.contextmanager
    def tolerated(self) -> Iterator[None]:
        from optuna.exceptions import StorageInternalError
        from sqlalchemy.exc import OperationalError

        try:
            yield
        except (StoreError, StorageInternalError, OperationalError) as exc:
            now = time.monotonic()
            self.since = self.since or now
            if now - self.since > self.OUTAGE_LIMIT_S:
                raise
            log.warning("store unreachable (%s); retrying", str(exc).splitlines()[0])
            time.sleep(1.0)
            return
        self.since = None


def _start(
    run: SweepRun,
    stage: StageSpec,
    asked: tuple[optuna.Trial, Proposal],
    spec_dict: dict[str, Any],
    pruning: PruningSpec | None,
) -> None:
    """The PENDING row first: whatever happens to the worker, the store has the trial."""
    trial, proposal = asked
    earlier = None
    if proposal.retry_of is not None:
        earlier = run.store.trial_by_optuna_number(run.spec.name, proposal.retry_of)
    retry_of = earlier.id if earlier is not None else None
    trial_id = _with_store_retries(
        lambda: run.store.create_trial(
            run.spec.name,
            spec_dict,
            dict(trial.params),
            {},
            stage=stage.name,
            optuna_trial_number=trial.number,
            attempt=proposal.attempt,
            retry_of=retry_of,
        ),
        committed=lambda: _existing_row(run, trial.number),
    )
    resolved = trial_spec(run.spec, dict(trial.params), proposal.repeat)
    resolved, notes = with_smaller_batch(resolved, proposal.batch_halvings)
    if proposal.alone:
        notes["placement"] = {"gpus_per_trial": 1.0, "why": ALONE_REASON}
    job = TrialJob(
        sweep=run.spec.name,
        stage=stage.name,
        optuna_number=trial.number,
        params=dict(trial.params),
        spec=resolved,
        db_url=run.db_url,
        home=run.home,
        runner=run.runner,
        pruning=pruning,
        repeat=proposal.repeat,
        trial_id=trial_id,
        heartbeat_interval=run.spec.resources.heartbeat_interval,
        attempt=proposal.attempt,
        after_oom=proposal.after_oom,
        gpus_per_trial=1.0 if proposal.alone else None,
        config_notes=notes,
        continue_from=continuable_tries(run.store, earlier),
    )
    run.backend.start(job)
    data = {"stage": stage.name, "number": trial.number, "params": job.params}
    run.on_event("trial_started", {**data, "attempt": proposal.attempt})


def _with_store_retries(write: Any, committed: Any) -> Any:
    """A row creation that meets a database restart is tried again each second for up to
    StoreOutage.OUTAGE_LIMIT_S, like the loop's other store calls. Only a retry first asks
    `committed` for the row an earlier try may have written before its connection
    dropped, so the normal path costs one write and no read."""
    deadline = time.monotonic() + StoreOutage.OUTAGE_LIMIT_S
    retrying = False
    while True:
        try:
            if retrying and (existing := committed()) is not None:
                return existing
            return write()
        except StoreError as exc:
            retrying = True
            if time.monotonic() > deadline:
                raise
            log.warning("store unreachable (%s); retrying", str(exc).splitlines()[0])
            time.sleep(1.0)


def _existing_row(run: SweepRun, number: int) -> int | None:
    stored = run.store.trial_by_optuna_number(run.spec.name, number)
    return stored.id if stored is not None else None


def settle(run: SweepRun, proposer: StageProposer, stage: StageSpec, result: JobResult) -> None:
    """Make the store row final (the worker's own end, or the one the backend or the
    watchdog saw), tell Optuna what the store says, and retry when the policy allows."""
    outcome = record_outcome(run, result)
    tell(run.study, outcome)
    proposer.known.settled(result.optuna_number)
    retry = proposer.retry(outcome) if outcome.state is TrialState.FAILED else None
    run.on_event("trial_finished", {"stage": stage.name, "result": result, "retry": retry})


def record_outcome(run: SweepRun, result: JobResult) -> Outcome:
    if result.trial_id is None:  # a runner that made no row (custom runner, setup crash)
        stored = run.store.trial_by_optuna_number(run.spec.name, result.optuna_number)
    else:
        stored = run.store.get_trial(result.trial_id)
    if stored is None:
        return Outcome(
            result.optuna_number, TrialState(result.state), result.objective, result.failure_kind
        )
    if not stored.state.is_finished:
        error = result.error or "the worker ended without recording a result"
        # StateTransitionError: the worker finished it just now, and its end stands
        with contextlib.suppress(StateTransitionError):
            run.store.set_trial_state(
                stored.id,
                TrialState.FAILED,
                error=error.splitlines()[0],
                traceback=error,
                failure_kind=result.failure_kind or "worker_lost",
            )
        stored = run.store.get_trial(stored.id)
    return Outcome.of_record(result.optuna_number, stored)


def stop_trials(run: SweepRun, proposer: StageProposer | None, reason: str) -> None:
    """Cancel or interrupt: every trial in flight ends CANCELLED in the store and FAIL
    (`sweepctl_failure: cancelled`) in Optuna; none of it counts as an attempt."""
    if proposer is not None:
        proposer.known.abandon()
    numbers = run.backend.stop_all()
    run.store.fail_running_trials(run.spec.name, reason, state=TrialState.CANCELLED)
    for number in numbers:
        stored = run.store.trial_by_optuna_number(run.spec.name, number)
        if stored is not None:
            tell(run.study, Outcome.of_record(number, stored))
        else:
            tell(run.study, Outcome(number, TrialState.CANCELLED))
