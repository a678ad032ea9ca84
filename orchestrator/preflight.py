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
    check_notify_targets(spec.notify.apprise, "notify.apprise")
    if runner == "transformer":
        check_trial_inputs(spec)


def check_notify_targets(urls: list[str], field: str) -> None:
    """Every Apprise URL must be one Apprise can send to (a typo'd scheme would only show
    up as a warning when the sweep ends, hours later). `${VAR}` references are checked
    when they are expanded, and a URL read back redacted from the store is left alone."""
    checked = [(i, url) for i, url in enumerate(urls) if "${" not in url and "***" not in url]
    if not checked:
        return  # no Apprise import for the many specs without targets
    import apprise

    from sweepctl.spec.overnight import redact_url

    for index, url in checked:
        if not apprise.Apprise().add(url):
            raise SpecError(
                f"{field}[{index}]: Apprise does not recognise {redact_url(url)!r}; expected "
                "a URL such as slack://..., mailto://..., json://host/path"
            )


def check_trial_inputs(spec: Any) -> bool:
    """The data read as a trial reads it, and the model config: what `validate`, `launch`
    and `resume` share. False when the model config could not be checked offline."""
    from sweepctl.workers.data import check_dataset, dataset_seed
    from sweepctl.workers.models import check_model_args

    check_dataset(spec.dataset, dataset_seed(spec))
    return bool(check_model_args(spec.model, spec.model_args, spec.search_space))
