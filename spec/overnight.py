"""The spec keys of an unattended sweep: `budget` (when to stop) and `notify` (who hears).

Why budgets are the orchestrator's: W&B's `run_cap` counts runs started, and is known to
overshoot (wandb#8549); a sweep whose configuration is broken spends its whole budget on
failures. Here each limit is checked against the record (the store) while the sweep runs,
and the sweep ends STOPPED with the limit it hit, resumable with a larger one.
"""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from sweepctl.spec.base import StrictModel
from sweepctl.spec.plan import parse_duration


class BudgetSpec(StrictModel):
    """`max_wall_time`: seconds or a duration ("8h", "90m") orchestrators spend driving
    the sweep, summed over launch and every resume (time between them is free).
    `max_trial_hours`: trial wall time summed over every trial, in hours (× gpus_per_trial
    it is GPU-hours). `max_failures`: configurations in a row that ended without a result
    (given up after their retries, or failed in a way a retry cannot fix);
    `max_failures_total`: all of them."""

    max_wall_time: float | None = Field(default=None, gt=0.0)
    max_trial_hours: float | None = Field(default=None, gt=0.0)
    max_failures: int | None = Field(default=None, ge=1)
    max_failures_total: int | None = Field(default=None, ge=1)

    @field_validator("max_wall_time", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        return parse_duration(value) if isinstance(value, str) else value

    @property
    def limited(self) -> bool:
        return any(v is not None for v in self.model_dump().values())


NotifyEvent = Literal["completed", "failed", "stopped", "cancelled"]


class NotifySpec(StrictModel):
    """`webhook`: an http(s) URL that receives a JSON POST when the sweep ends in one of
    `on`. `apprise`: Apprise URLs (slack://, mailto://, matrix://, json://, ...)."""

    webhook: str | None = None
    apprise: list[str] = []
    on: list[NotifyEvent] = ["completed", "failed", "stopped"]

    @field_validator("webhook")
    @classmethod
    def _http_url(cls, url: str | None) -> str | None:
        if url is None or "${" in url:
            return url  # an environment reference is checked when it is expanded
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"expected an http:// or https:// URL (got {redact_url(url)!r})")
        return url

    @field_validator("apprise")
    @classmethod
    def _apprise_urls(cls, urls: list[str]) -> list[str]:
        for url in urls:
            if "://" not in url:
                raise ValueError(f"expected an Apprise URL such as slack://... (got {url!r})")
        return urls

    @property
    def targets(self) -> list[str]:
        return [*([self.webhook] if self.webhook else []), *self.apprise]


def redact_url(url: str) -> str:
    """A notification URL as it may be shown or stored: password, token-like path parts
    (and, outside http(s), a token-like host: Apprise puts tokens there) and query values
    replaced by ***; the scheme and a host name kept, so users can tell which it is."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]  # as written: Slack's tokens are case-sensitive
    if parts.scheme not in ("http", "https"):  # slack://TOKEN/..., tgram://BOT_TOKEN/...
        host = ":".join(_redact_segment(piece) for piece in host.split(":"))
    user = f"{parts.username}:***@" if parts.password else ("***@" if parts.username else "")
    path = "/".join(_redact_segment(segment) for segment in parts.path.split("/"))
    query = "&".join(
        f"{pair.split('=', 1)[0]}=***" if "=" in pair else pair
        for pair in parts.query.split("&")
        if pair
    )
    return f"{parts.scheme}://{user}{host}{path}" + (f"?{query}" if query else "")


def _redact_segment(segment: str) -> str:
    """Slack, Discord and Telegram put their tokens in the path: any long segment with
    digits or mixed case is treated as a secret."""
    secret = len(segment) >= 8 and (any(c.isdigit() for c in segment) or not segment.islower())
    return "***" if secret else segment
