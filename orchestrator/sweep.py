"""Running a staged sweep: take the lease, run the stages in order, end honestly.

    launch ─► sweep RUNNING (lease held, renewed with the heartbeat) ─► for each stage
              (skipping COMPLETED ones on resume): stage RUNNING ─► orchestrator.stage_runner
              ─► stage COMPLETED (+ summary: the OFAT ranking, given-up and failed points)
           ─► sweep COMPLETED, or FAILED when a stage trained nothing successfully
              (or CANCELLED: `sweepctl cancel` elsewhere, Ctrl-C or SIGTERM here;
              or STOPPED: a budget was used up, orchestrator.budget)

The orchestrator holds no per-status lists of its own: the study and the store are the
state, which is what makes `resume` after a crash simple. Trials the dead orchestrator
left in flight end CANCELLED (they say nothing about their configuration), a trial whose
worker had already stored its end is told to Optuna from the store, and every stage
recomputes what is still to do from the record.
"""

from __future__ import annotations

import logging
from typing import Any

import optuna

from sweepctl.orchestrator.outcomes import Outcome, tell
from sweepctl.orchestrator.ownership import LeaseKeeper
from sweepctl.orchestrator.proposals import tie_pick_warning
from sweepctl.orchestrator.reasons import CANCEL_REASON, CRASH_REASON, INTERRUPT_REASON
from sweepctl.orchestrator.retries import RetryPolicy, stage_tally
from sweepctl.orchestrator.reuse import is_reused
from sweepctl.orchestrator.run import SweepRun
from sweepctl.orchestrator.search import finished_ok, stage_trials
from sweepctl.orchestrator.stage_runner import (
    MAX_REPEAT_STREAK,
    StageProposer,
    run_stage,
    stage_context,
    stop_trials,
)
from sweepctl.orchestrator.strategies import strategy_named
from sweepctl.spec.models import spec_to_dict
from sweepctl.spec.plan import StageSpec
from sweepctl.storage import Store, SweepState, TrialState
from sweepctl.storage.optuna_adapter import discard_waiting

log = logging.getLogger("sweepctl.sweep")

__all__ = [
    "CANCEL_REASON",
    "CRASH_REASON",
    "INTERRUPT_REASON",
    "MAX_REPEAT_STREAK",
    "StageProposer",
    "SweepRun",
    "launch",
    "resume",
    "start",
]


def launch(run: SweepRun) -> SweepState:
    """A new sweep: its rows first (refused if the name exists), then the stages."""
    stages = [(s.name, s.strategy) for s in run.spec.stages]
    run.store.create_sweep(run.spec.name, spec_to_dict(run.spec), stages)
    return _owned(run, recover=False)


def start(run: SweepRun) -> SweepState:
    """A sweep whose rows already exist as PENDING: one queued by `sweepctl serve`."""
    return _owned(run, recover=False)


def resume(run: SweepRun) -> SweepState:
    """Continue where the sweep stopped: completed trials are kept, interrupted ones retried."""
    return _owned(run, recover=True)


def _owned(run: SweepRun, recover: bool) -> SweepState:
    """Everything under the lease: a second orchestrator is refused before it touches a
    row (LeaseHeldError), and one that lost the lease stops (LeaseLostError)."""
    interval = run.spec.resources.heartbeat_interval
    with LeaseKeeper(run.store, run.spec.name, interval, run.role) as lease:
        if recover:
            _recover(run)
        try:
            state = _run(run, lease)
        except KeyboardInterrupt:
            _interrupt(run)
            _notify(run)
            raise
    _notify(run)  # after the lease is let go: the payload's elapsed time is final
    return state


def _notify(run: SweepRun) -> None:
    """The sweep's end to its notification targets; a failure here is only logged."""
    from sweepctl.orchestrator.notify import notify_sweep_end

    try:
        notify_sweep_end(
            run.store, run.spec.name, run.spec.notify, run.notify_defaults, run.dashboard_url
        )
    except Exception:  # the record is safe; the news is best effort
        log.exception("sweep %s: notifications failed", run.spec.name)


def _recover(run: SweepRun) -> None:
    """Bring the study and the store back in line after a crash. The store is the record:
    rows left unfinished end CANCELLED, then each Optuna trial still in flight is told
    what its row says (a worker that had finished is told as finished, not re-run)."""
    states = optuna.trial.TrialState
    ended = run.store.fail_running_trials(run.spec.name, CRASH_REASON, state=TrialState.CANCELLED)
    for trial in run.study.get_trials(deepcopy=False, states=(states.RUNNING, states.WAITING)):
        stored = run.store.trial_by_optuna_number(run.spec.name, trial.number)
        if trial.state is states.WAITING:  # enqueued, never asked: nothing ran
            discard_waiting(run.study, trial)
        elif stored is not None:
            tell(run.study, Outcome.of_record(trial.number, stored))
        else:
            tell(run.study, Outcome(trial.number, TrialState.CANCELLED))
    run.on_event("recovered", {"failed_trials": ended})


def _interrupt(run: SweepRun) -> None:
    """Ctrl-C or SIGTERM: stop the trials, record them CANCELLED, leave the sweep
    CANCELLED so `resume` continues it."""
    stop_trials(run, None, INTERRUPT_REASON)
    name = run.spec.name
    for stage in run.store.get_sweep(name).stages:
        if stage.state is SweepState.RUNNING:
            run.store.set_stage_state(name, stage.name, SweepState.CANCELLED)
    if run.store.get_sweep(name).state is SweepState.RUNNING:
        run.store.set_sweep_state(name, SweepState.CANCELLED)


def _run(run: SweepRun, lease: LeaseKeeper) -> SweepState:
    name = run.spec.name
    run.store.set_sweep_state(name, SweepState.RUNNING)
    done = {s.name for s in run.store.get_sweep(name).stages if s.state == SweepState.COMPLETED}
    for stage in run.spec.stages:
        if stage.name in done:
            _conclude(run, stage)
            continue
        run.store.set_stage_state(name, stage.name, SweepState.RUNNING)
        _warn_of_tie_pick(run, stage)
        outcome, proposer = run_stage(run, stage, lease)
        if outcome == "cancelled":
            run.store.set_stage_state(name, stage.name, SweepState.CANCELLED)
            return SweepState.CANCELLED  # `sweepctl cancel` already moved the sweep itself
        if outcome == "stopped":
            return _stop_sweep(run, stage, proposer.stop_reason or "budget used up")
        summary = _stage_summary(run, stage, proposer)
        if summary["trials"] and not summary["finished"]:
            return _fail_sweep(run, stage, summary)
        run.store.set_stage_state(name, stage.name, SweepState.COMPLETED, summary=summary)
        run.on_event("stage_completed", {"stage": stage.name, "summary": summary})
    run.store.set_sweep_state(name, SweepState.COMPLETED)
    return SweepState.COMPLETED


def _warn_of_tie_pick(run: SweepRun, stage: StageSpec) -> None:
    """A `top: k` read from a ranking of ties is said at once, not only in the summary."""
    warning = tie_pick_warning(stage, run.reports)
    if warning is not None:
        log.warning("stage %s: %s", stage.name, warning)
        run.on_event("stage_warning", {"stage": stage.name, "warning": warning})


def _fail_sweep(run: SweepRun, stage: StageSpec, summary: dict[str, Any]) -> SweepState:
    """Nothing in this stage succeeded: later stages would rank or search nothing."""
    name = run.spec.name
    reason = f"stage {stage.name!r}: no trial succeeded ({failure_digest(run.store, name)})"
    run.store.set_stage_state(name, stage.name, SweepState.FAILED, summary=summary)
    run.store.set_sweep_state(name, SweepState.FAILED, error=reason)
    run.on_event("sweep_failed", {"stage": stage.name, "reason": reason})
    return SweepState.FAILED


def _stop_sweep(run: SweepRun, stage: StageSpec, reason: str) -> SweepState:
    """A budget was used up: the stage and the sweep end STOPPED with the limit that was
    hit; `sweepctl resume NAME --budget KEY=VALUE` continues with a larger one."""
    name = run.spec.name
    run.store.set_stage_state(name, stage.name, SweepState.STOPPED)
    run.store.set_sweep_state(name, SweepState.STOPPED, error=reason)
    run.on_event("sweep_stopped", {"stage": stage.name, "reason": reason})
    return SweepState.STOPPED


def failure_digest(store: Store, sweep: str) -> str:
    """ "3 failed: 2 bad_input, 1 nan; first: <its error>" from the sweep's rows."""
    failed = [t for t in store.list_trials(sweep) if t.state is TrialState.FAILED]
    if not failed:
        return "no trial finished"
    kinds: dict[str, int] = {}
    for trial in failed:
        kinds[trial.failure_kind or "error"] = kinds.get(trial.failure_kind or "error", 0) + 1
    counts = ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items()))
    first = (failed[0].error or "").splitlines()[0][:200] if failed[0].error else "?"
    return f"{len(failed)} failed: {counts}; first: {first}"


def _conclude(run: SweepRun, stage: StageSpec) -> dict[str, Any]:
    """What the stage's results mean, by its strategy; a ranking is kept for the stages
    that take their parameters from it."""
    ctx = stage_context(run, stage)
    conclusion = strategy_named(stage.strategy).conclude(ctx, run.study)
    if conclusion.ranking is not None:
        run.reports[stage.name] = conclusion.ranking
    return conclusion.summary


def _stage_summary(run: SweepRun, stage: StageSpec, proposer: StageProposer) -> dict[str, Any]:
    """`trials` counts Optuna trials; `reused` of them were answered from an earlier run of
    the same configuration instead of training it again; `ended_by` says why a sampled
    stage stopped (n_trials, exhausted: every configuration of its space is known, or
    repeats: the sampler proposed only known configurations MAX_REPEAT_STREAK times).
    `given_up` points used up their retries, `failed` ones failed deterministically,
    `retried` counts the extra attempts (orchestrator.retries). `picked_from_tie`: its
    `top: k` came from a stage where no parameter moved the objective, said in `warnings`
    (orchestrator.proposals.tie_pick_warning), so nothing presents the pick as a ranking."""
    trials = stage_trials(run.study, stage.name)
    summary: dict[str, Any] = {
        **proposer.record,  # the plan kept for a resume (StageStrategy.plan_record)
        "trials": len(trials),
        "finished": sum(finished_ok(t) for t in trials),
        "reused": sum(finished_ok(t) and is_reused(t) for t in trials),
        "ended_by": proposer.ended_by,
        **stage_tally(run.study, stage.name, RetryPolicy.of(run.spec)),
    }
    warning = tie_pick_warning(stage, run.reports)
    if warning is not None:
        summary.update(picked_from_tie=True, warnings=[warning])
    if summary["finished"]:
        summary.update(_conclude(run, stage))
    return summary


def given_up_points(store: Store, sweep: str) -> int:
    """Points the sweep gave up on, summed over its stages' summaries."""
    return sum(int((s.summary or {}).get("given_up", 0)) for s in store.get_sweep(sweep).stages)
