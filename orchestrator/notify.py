"""When a sweep ends, tell someone: a webhook's JSON POST and Apprise URLs (Slack, e-mail,
Matrix, ...; PyPI `apprise`).

Why here and never in the stage loop: a notification reports the record, so it is sent
once the sweep's end state is stored, from the same payload for every target. A target
that fails is logged and retried ATTEMPTS times with a short backoff, and then left: the
sweep's result is what matters and it is already safe in the store, so no notification
can fail a sweep or change its exit code.

Secrets: the spec as stored holds the URLs redacted (spec.models.spec_to_dict). A
`${VAR}` reference is stored as written and expanded here, from the environment of the
process that sends; that is how a server-run or resumed sweep notifies with a secret
URL. A redacted URL (one read back from the store) cannot be sent and is skipped with a
warning that says so. Every log line shows targets redacted.
"""

from __future__ import annotations

import json
import logging
import os
import string
import time
import urllib.request
from collections.abc import Callable
from typing import Any

from sweepctl.orchestrator.confirmed import confirmed_best, mean_ci
from sweepctl.orchestrator.sweep_report import objective_of
from sweepctl.spec.overnight import NotifySpec, redact_url
from sweepctl.storage import Store, SweepRecord, SweepState
from sweepctl.storage.models import utcnow

log = logging.getLogger("sweepctl.notify")
ATTEMPTS = 3
BACKOFF_S = 0.5  # doubled after each failed attempt
TIMEOUT_S = 10.0
REDACTED = "***"
EVENT_OF = {
    SweepState.COMPLETED: "completed",
    SweepState.FAILED: "failed",
    SweepState.STOPPED: "stopped",
    SweepState.CANCELLED: "cancelled",
}


def notify_sweep_end(
    store: Store,
    name: str,
    notify: NotifySpec,
    defaults: list[str] | None = None,
    dashboard: str | None = None,
) -> dict[str, bool]:
    """Send the end of sweep `name` to its targets (the spec's, else `defaults`: `serve
    --notify`) when its state is one of `notify.on`. Returns delivered-or-not by redacted
    target; never raises for a target."""
    sweep = store.get_sweep(name)
    event = EVENT_OF.get(sweep.state)
    if event is None or event not in notify.on:
        return {}
    targets = notify.targets or list(defaults or [])
    if not targets:
        return {}
    payload = sweep_end_payload(store, sweep, event, dashboard)
    return {redact_url(target): _deliver(target, payload) for target in targets}


def sweep_end_payload(
    store: Store, sweep: SweepRecord, event: str, dashboard: str | None
) -> dict[str, Any]:
    """What every target receives: the sweep, how it ended and why, its best, its counts,
    how long orchestrators drove it and where to look."""
    return {
        "sweep": sweep.name,
        "event": event,
        "state": sweep.state.value,
        "reason": sweep.error,
        "best": _best(store, sweep),
        "counts": {k.lower(): v for k, v in sweep.trial_counts.items() if v},
        "elapsed_s": round(sweep.driven_seconds(utcnow()), 1),
        "dashboard": f"{dashboard.rstrip('/')}/sweeps/{sweep.id}" if dashboard else None,
    }


def _best(store: Store, sweep: SweepRecord) -> dict[str, Any] | None:
    """The confirm stage's pick with its interval, else the best single trial."""
    confirmed = confirmed_best(sweep.stages)
    if confirmed is not None:
        return {
            "params": confirmed.winner["params"],
            "metric": confirmed.metric,
            "mean_ci": mean_ci(confirmed.winner, plus="+-"),
            "tied": bool(confirmed.tied),
        }
    objective = objective_of(sweep.spec)
    ranked = store.ranked_trials(sweep.id, objective.maximize, 1)
    if not ranked:
        return None
    return {
        "params": ranked[0].params,
        "metric": objective.metric,
        "objective": ranked[0].objective,
    }


def _deliver(target: str, payload: dict[str, Any]) -> bool:
    """An http(s) URL is a webhook (a JSON POST); anything else goes through Apprise."""
    shown = redact_url(target)
    url = expand(target)
    if url is None or REDACTED in url:
        log.warning(
            "notify %s: skipped: its secret was not kept in the store (write it as ${VAR} "
            "to notify from a resumed or server-run sweep)",
            shown,
        )
        return False
    webhook = url.startswith(("http://", "https://"))
    send: Callable[[], None] = (
        (lambda: _post_json(url, payload)) if webhook else (lambda: _apprise(url, payload))
    )
    delay = BACKOFF_S
    for attempt in range(1, ATTEMPTS + 1):
        try:
            send()
            return True
        except Exception as exc:  # a dead receiver must never fail the sweep
            log.warning("notify %s: attempt %d of %d failed: %s", shown, attempt, ATTEMPTS, exc)
            if attempt < ATTEMPTS:
                time.sleep(delay)
                delay *= 2
    return False


def expand(url: str) -> str | None:
    """`${VAR}` references from the environment; None when one is not set."""
    try:
        return string.Template(url).substitute(os.environ)
    except (KeyError, ValueError):
        return None


def _post_json(url: str, payload: dict[str, Any]) -> None:
    body = json.dumps(payload, default=str).encode()
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
        if response.status >= 300:
            raise RuntimeError(f"HTTP {response.status}")


def _apprise(url: str, payload: dict[str, Any]) -> None:
    import apprise

    notifier = apprise.Apprise()
    if not notifier.add(url):
        raise ValueError("apprise does not recognise this URL")
    title = f"sweepctl: sweep {payload['sweep']} {payload['state']}"
    if not notifier.notify(title=title, body=message_text(payload)):
        raise RuntimeError("apprise reported the notification as not sent")


def message_text(payload: dict[str, Any]) -> str:
    """The human form of the payload, for chat and e-mail targets."""
    lines = [f"sweep {payload['sweep']}: {payload['state']}"]
    if payload.get("reason"):
        lines.append(f"why: {payload['reason']}")
    best = payload.get("best")
    if best:
        score = best.get("mean_ci") or best.get("objective")
        lines.append(f"best: {best['params']}  {best.get('metric')} {score}")
    counts = ", ".join(f"{k} {v}" for k, v in (payload.get("counts") or {}).items())
    lines.append(f"trials: {counts or 'none'}; elapsed {payload['elapsed_s']} s")
    if payload.get("dashboard"):
        lines.append(payload["dashboard"])
    return "\n".join(lines)
