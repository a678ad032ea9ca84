"""Which points of a stage still need a try, and when a failed try is tried again.

Why retries are the orchestrator's and not Ray's: a Ray task retry re-runs the same
Optuna trial number, which the store (rightly) refuses to register twice, so the retry
could never succeed while the point silently counted as done. Here a retry is a new
Optuna trial and a new store row (`attempt` n+1, `retry_of` the try it repeats), so the
record shows every try and why each ended.

A point is a configuration of a stage: its params and seed offset (orchestrator.reuse's
config key). It is *settled* when one try finished (COMPLETE or PRUNED), when a try
failed deterministically (error, nan, bad_input: the same code on the same input fails
again), or when `retries.max_attempts` tries failed for a retryable reason (`retries.on`);
that last case is *given up*, and the stage summary counts it. Cancelled tries (a cancel,
Ctrl-C, a dead orchestrator) say nothing about the configuration and never count.

Out of memory is the exception (`resources.oom_fallback`): the next try of the point runs
with a smaller batch at the same effective batch (spec.batch), so an OOM that the batch
can still answer is free. Only an OOM at a batch of 1 counts as an attempt.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

import optuna
from optuna.trial import FrozenTrial

from sweepctl.orchestrator.outcomes import (
    ATTEMPT_ATTR,
    BATCH_HALVINGS_ATTR,
    CANCELLED,
    FAILURE_ATTR,
    RETRY_OF_ATTR,
)
from sweepctl.orchestrator.proposals import Proposal
from sweepctl.orchestrator.reuse import ConfigKey, is_reused, trial_key
from sweepctl.orchestrator.search import CONFIG_ATTR, REPEAT_ATTR, finished_ok, stage_trials
from sweepctl.spec.batch import possible_halvings
from sweepctl.spec.models import SweepSpec
from sweepctl.storage import FailureKind

SAMPLED_ROLE = "sampled"
OOM = FailureKind.OOM.value
BATCH_KEYS = ("per_device_train_batch_size", "gradient_accumulation_steps")


@dataclass(frozen=True)
class RetryPolicy:
    """`retries` and `resources.oom_fallback` of a spec: when a failed try is tried again."""

    max_attempts: int
    on: tuple[str, ...]
    oom_fallback: bool = False
    training: dict[str, object] = field(default_factory=dict)
    packed: bool = False  # 0 < gpus_per_trial < 1: trials share a device

    @classmethod
    def of(cls, spec: SweepSpec) -> RetryPolicy:
        gpus = spec.resources.gpus_per_trial
        return cls(
            max_attempts=spec.retries.max_attempts,
            on=tuple(spec.retries.on),
            oom_fallback=spec.resources.oom_fallback,
            training=dict(spec.training),
            packed=0.0 < gpus < 1.0,
        )

    def oom_answers(self, params: dict[str, object]) -> int:
        """How many OOMs of this point the fallback answers: for a packed trial first a
        try alone on a device (the others' memory may be what it lacked), then each
        batch halving."""
        if not self.oom_fallback:
            return 0
        # a searched batch size or accumulation is the point's own
        searched = {k: v for k, v in params.items() if k in BATCH_KEYS}
        halvings = possible_halvings({**self.training, **searched})
        return halvings + (1 if self.packed else 0)


@dataclass
class PointHistory:
    """Every try of one point in one stage, oldest first."""

    tries: list[FrozenTrial] = field(default_factory=list)

    @property
    def succeeded(self) -> bool:
        return any(finished_ok(t) for t in self.tries)

    def failures(self) -> list[str]:
        return [
            str(t.user_attrs.get(FAILURE_ATTR, CANCELLED))
            for t in self.tries
            if t.state is optuna.trial.TrialState.FAIL
        ]

    def ooms(self) -> int:
        return sum(kind == OOM for kind in self.failures())

    def free_ooms(self, policy: RetryPolicy) -> int:
        """OOMs the fallback answers with a smaller batch: they cost no attempt."""
        if not self.tries:
            return 0
        return min(self.ooms(), policy.oom_answers(dict(self.tries[0].params)))

    def counted_failures(self, policy: RetryPolicy) -> int:
        counted = sum(kind in policy.on for kind in self.failures())
        return counted - (self.free_ooms(policy) if OOM in policy.on else 0)

    def oom_answerable(self, policy: RetryPolicy) -> bool:
        """The last try ran out of memory at a batch that can still shrink."""
        failed = self.tries[-1].state is optuna.trial.TrialState.FAIL
        last_oom = failed and self.tries[-1].user_attrs.get(FAILURE_ATTR) == OOM
        return last_oom and self.ooms() <= policy.oom_answers(dict(self.tries[0].params))

    def failed_deterministically(self) -> bool:
        deterministic = {k.value for k in FailureKind if k.is_deterministic}
        return any(kind in deterministic for kind in self.failures())

    def given_up(self, policy: RetryPolicy) -> bool:
        """Tries are used up, or the last one failed for a kind `retries.on` leaves out."""
        if self.succeeded or self.failed_deterministically():
            return False
        last = self.failures()[-1:]
        not_retried = last not in ([], [CANCELLED]) and last[0] not in policy.on
        if not_retried and not self.oom_answerable(policy):
            return True
        return self.counted_failures(policy) >= policy.max_attempts

    def settled(self, policy: RetryPolicy) -> bool:
        return self.succeeded or self.failed_deterministically() or self.given_up(policy)

    def next_try(self, proposal: Proposal, policy: RetryPolicy) -> Proposal:
        """The proposal again, numbered as the next attempt after the last try, with the
        fallback's answer to each out-of-memory try so far: alone on a device (a packed
        trial's first), then one batch halving each."""
        if not self.tries:
            return proposal
        last = self.tries[-1]
        answered = self.free_ooms(policy)
        alone = policy.packed and answered > 0
        return replace(
            proposal,
            attempt=len(self.tries) + 1,
            retry_of=last.number,
            batch_halvings=answered - 1 if alone else answered,
            alone=alone,
            after_oom=last.user_attrs.get(FAILURE_ATTR) == OOM,
        )


def histories(study: optuna.Study, stage: str) -> dict[ConfigKey, PointHistory]:
    """Tries by point. Reused answers are not tries: nothing trained."""
    found: dict[ConfigKey, PointHistory] = {}
    trials = sorted(stage_trials(study, stage), key=lambda t: t.number)
    for trial in trials:
        if is_reused(trial) or not trial.state.is_finished():
            continue
        found.setdefault(trial_key(trial), PointHistory()).tries.append(trial)
    return found


def proposal_of(trial: FrozenTrial) -> Proposal:
    """The proposal a try was made from: a fixed stage's point keeps its role, so a retry
    carries the same `sweepctl_config` and counts as that point on resume."""
    repeat = int(trial.user_attrs.get(REPEAT_ATTR) or 0)
    config = trial.user_attrs.get(CONFIG_ATTR)
    role = json.loads(config)[0] if config else SAMPLED_ROLE
    return Proposal(dict(trial.params), role, repeat)


def unsettled_tries(
    study: optuna.Study, stage: str, policy: RetryPolicy, exclude: Iterable[ConfigKey] = ()
) -> list[Proposal]:
    """Points of a stage that were tried, are not settled, and have no try in flight:
    what a resumed sampled stage runs again (a fixed stage re-derives its own list)."""
    skip = set(exclude)
    retries = []
    for key, history in histories(study, stage).items():
        if key in skip or history.settled(policy):
            continue
        retries.append(history.next_try(proposal_of(history.tries[-1]), policy))
    return sorted(retries, key=lambda p: p.retry_of or 0)


def retry_after(
    study: optuna.Study, stage: str, trial: FrozenTrial, policy: RetryPolicy
) -> Proposal | None:
    """A new try of `trial`'s point when its failure is retryable and tries are left."""
    kind = trial.user_attrs.get(FAILURE_ATTR)
    if trial.state is not optuna.trial.TrialState.FAIL:
        return None
    history = histories(study, stage).get(trial_key(trial), PointHistory([trial]))
    if kind not in policy.on and not history.oom_answerable(policy):
        return None
    if history.settled(policy):
        return None
    return history.next_try(proposal_of(trial), policy)


def attempt_attrs(proposal: Proposal) -> dict[str, int]:
    attrs = {ATTEMPT_ATTR: proposal.attempt}
    if proposal.retry_of is not None:
        attrs[RETRY_OF_ATTR] = proposal.retry_of
    if proposal.batch_halvings:
        attrs[BATCH_HALVINGS_ATTR] = proposal.batch_halvings
    return attrs


def stage_tally(study: optuna.Study, stage: str, policy: RetryPolicy) -> dict[str, int]:
    """What a stage summary reports about its points' ends."""
    points = histories(study, stage).values()
    return {
        "given_up": sum(h.given_up(policy) for h in points),
        "failed": sum(h.failed_deterministically() and not h.succeeded for h in points),
        "retried": sum(max(0, len(h.tries) - 1) for h in points),
    }
