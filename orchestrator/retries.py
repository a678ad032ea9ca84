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
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

import optuna
from optuna.trial import FrozenTrial

from sweepctl.orchestrator.outcomes import ATTEMPT_ATTR, CANCELLED, FAILURE_ATTR, RETRY_OF_ATTR
from sweepctl.orchestrator.proposals import Proposal
from sweepctl.orchestrator.reuse import ConfigKey, is_reused, trial_key
from sweepctl.orchestrator.search import CONFIG_ATTR, REPEAT_ATTR, finished_ok, stage_trials
from sweepctl.spec.plan import RetriesSpec
from sweepctl.storage import FailureKind

SAMPLED_ROLE = "sampled"


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

    def counted_failures(self, policy: RetriesSpec) -> int:
        return sum(kind in policy.on for kind in self.failures())

    def failed_deterministically(self) -> bool:
        deterministic = {k.value for k in FailureKind if k.is_deterministic}
        return any(kind in deterministic for kind in self.failures())

    def given_up(self, policy: RetriesSpec) -> bool:
        if self.succeeded or self.failed_deterministically():
            return False
        return self.counted_failures(policy) >= policy.max_attempts

    def settled(self, policy: RetriesSpec) -> bool:
        return self.succeeded or self.failed_deterministically() or self.given_up(policy)

    def next_try(self, proposal: Proposal) -> Proposal:
        """The proposal again, numbered as the next attempt after the last try."""
        if not self.tries:
            return proposal
        last = self.tries[-1]
        return replace(proposal, attempt=len(self.tries) + 1, retry_of=last.number)


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
    study: optuna.Study, stage: str, policy: RetriesSpec, exclude: Iterable[ConfigKey] = ()
) -> list[Proposal]:
    """Points of a stage that were tried, are not settled, and have no try in flight:
    what a resumed sampled stage runs again (a fixed stage re-derives its own list)."""
    skip = set(exclude)
    retries = []
    for key, history in histories(study, stage).items():
        if key in skip or history.settled(policy):
            continue
        retries.append(history.next_try(proposal_of(history.tries[-1])))
    return sorted(retries, key=lambda p: p.retry_of or 0)


def retry_after(
    study: optuna.Study, stage: str, trial: FrozenTrial, policy: RetriesSpec
) -> Proposal | None:
    """A new try of `trial`'s point when its failure is retryable and tries are left."""
    kind = trial.user_attrs.get(FAILURE_ATTR)
    if trial.state is not optuna.trial.TrialState.FAIL or kind not in policy.on:
        return None
    history = histories(study, stage).get(trial_key(trial), PointHistory([trial]))
    if history.settled(policy):
        return None
    return history.next_try(proposal_of(trial))


def attempt_attrs(proposal: Proposal) -> dict[str, int]:
    attrs = {ATTEMPT_ATTR: proposal.attempt}
    if proposal.retry_of is not None:
        attrs[RETRY_OF_ATTR] = proposal.retry_of
    return attrs


def stage_tally(study: optuna.Study, stage: str, policy: RetriesSpec) -> dict[str, int]:
    """What a stage summary reports about its points' ends."""
    points = histories(study, stage).values()
    return {
        "given_up": sum(h.given_up(policy) for h in points),
        "failed": sum(h.failed_deterministically() and not h.succeeded for h in points),
        "retried": sum(max(0, len(h.tries) - 1) for h in points),
    }
