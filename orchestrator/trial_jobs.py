"""The fully resolved job a worker runs: the orchestrator does the resolving, once.

This trial's values and its repeat's seed are applied to the spec here, with the same
routing `sweepctl trial --set` uses (spec.overrides), and the plan is left out: a worker
needs the trial, not the sweep's stages, and a plugin strategy registered in this process
may not exist on a Ray node.
"""

from __future__ import annotations

from typing import Any

from sweepctl.spec.batch import Batch, after_halvings
from sweepctl.spec.models import SweepSpec, spec_to_dict
from sweepctl.spec.overrides import apply_overrides
from sweepctl.spec.plan import PruningSpec
from sweepctl.storage import Store, TrialRecord, TrialState

MAX_CHAIN = 20  # tries of one configuration looked back over for a checkpoint


def trial_spec(spec: SweepSpec, params: dict[str, Any], repeat: int) -> dict[str, Any]:
    """The spec this trial runs: its values in place, the seed of its repeat, no stages."""
    values = dict(params)
    if repeat:
        values["seed"] = spec.seed + repeat
    stageless = spec.model_copy(update={"stages": []})
    return spec_to_dict(apply_overrides(stageless, values, resolved=True))


def with_smaller_batch(
    spec: dict[str, Any], halvings: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The trial's spec after `halvings` out-of-memory retries, and what the record says
    about it (`oom_fallback`: the batch before and after; nothing without a halving).
    The params, the configuration's identity, stay."""
    if not halvings:
        return spec, {}
    training = dict(spec.get("training") or {})
    smaller = after_halvings(training, halvings)
    note = {"batch_before": Batch.of(training).to_dict(), "batch": smaller.to_dict()}
    resized = {**spec, "training": {**training, **smaller.training_values()}}
    return resized, {"oom_fallback": note}


def trial_pruning(spec: SweepSpec, prunable: bool) -> PruningSpec | None:
    """None for a stage whose trials must run to the end (its strategy says so)."""
    if not prunable or spec.pruning.algorithm == "none":
        return None
    return spec.pruning


def continuable_tries(store: Store, earlier: TrialRecord | None) -> tuple[int, ...]:
    """The interrupted tries a retry may continue from (workers.continuation): store ids,
    newest first, back along `retry_of` from `earlier` (the try this one repeats),
    stopping at an out-of-memory try (its successors run with another batch) and at
    anything that did not end FAILED or CANCELLED."""
    chain: list[int] = []
    trial = earlier
    while trial is not None and len(chain) < MAX_CHAIN:
        interrupted = trial.state in (TrialState.FAILED, TrialState.CANCELLED)
        if not interrupted or trial.failure_kind == "oom":
            break
        chain.append(trial.id)
        trial = store.get_trial(trial.retry_of) if trial.retry_of is not None else None
    return tuple(chain)
