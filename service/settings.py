"""What `sweepctl serve` was started with; one frozen object the app and controller share."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Literal

TOKEN_ENV = "SWEEPCTL_TOKEN"


def is_loopback(host: str) -> bool:
    """Only loopback binds may skip the token: anything else is reachable from the network."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to any interface


@dataclass(frozen=True)
class ServeSettings:
    db_url: str
    home: str
    host: str = "127.0.0.1"
    port: int = 8000
    token: str | None = None
    max_concurrent_sweeps: int = 1
    ray_address: str | None = None
    backend: Literal["ray", "inline"] = "ray"
    runner: str = "transformer"
    run_controller: bool = True
    poll_seconds: float = 1.0

    @property
    def token_required(self) -> bool:
        """A configured token is always enforced; a non-loopback bind cannot run without one
        (`serve` refuses to start), so every state-changing request there needs it."""
        return self.token is not None or not is_loopback(self.host)
