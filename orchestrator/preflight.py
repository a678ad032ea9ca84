"""What is checked before a sweep writes anything: by `launch`, `resume`, `validate` and the
server's submissions alike, so a spec the CLI accepts is one the server accepts."""

from __future__ import annotations

from typing import Any

from sweepctl.spec.errors import SpecError


def check_launchable(spec: Any, source: str, runner: str = "transformer") -> None:
    """What `launch` checks before it writes anything; the server's submissions too."""
    from sweepctl.spec.baseline import baseline

    if not spec.stages:
        raise SpecError(f"{source}: stages: launch needs at least one stage")
    baseline(spec)
    if runner == "transformer":
        check_trial_inputs(spec)


def check_trial_inputs(spec: Any) -> bool:
    """The data read as a trial reads it, and the model config: what `validate`, `launch`
    and `resume` share. False when the model config could not be checked offline."""
    from sweepctl.workers.data import check_dataset, dataset_seed
    from sweepctl.workers.models import check_model_args

    check_dataset(spec.dataset, dataset_seed(spec))
    return bool(check_model_args(spec.model, spec.model_args, spec.search_space))
