"""What `sweepctl serve` was started with; one frozen object the app and controller share."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Literal

TOKEN_ENV = "SWEEPCTL_TOKEN"
MAX_BODY_BYTES = 1024 * 1024  # a real spec is a few KB; the largest bench spec is 40 KB
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "[::1]", "::1"})
ANY_ADDRESS = frozenset({"0.0.0.0", "::", "[::]", ""})


def is_loopback(host: str) -> bool:
    """Only loopback binds keep reads open: anything else is reachable from the network."""
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
    # every change needs it; None (only in-process tests build that) refuses every change
    token: str | None = None
    allowed_hosts: tuple[str, ...] = ()
    max_body_bytes: int = MAX_BODY_BYTES
    max_concurrent_sweeps: int = 1
    ray_address: str | None = None
    backend: Literal["ray", "inline"] = "ray"
    runner: str = "transformer"
    run_controller: bool = True
    poll_seconds: float = 1.0
    notify: tuple[str, ...] = ()  # `--notify`: targets of sweeps whose spec names none

    @property
    def dashboard_url(self) -> str:
        """The base a notification links to: the bind address, or loopback for 0.0.0.0."""
        host = "127.0.0.1" if self.host in ANY_ADDRESS else _bracketed(self.host)
        return f"http://{host}:{self.port}"

    @property
    def reads_need_token(self) -> bool:
        """Off loopback anyone on the network could read sweeps, specs and data paths."""
        return not is_loopback(self.host)

    @property
    def host_names(self) -> frozenset[str]:
        """Names a request's Host header may carry (port aside): loopback, the bind address
        when it is a specific one, and every --allowed-host. Anything else is DNS rebinding
        or a name nobody vouched for."""
        names = {name.lower() for name in (*LOOPBACK_NAMES, *self.allowed_hosts)}
        if self.host not in ANY_ADDRESS:
            names.add(_bracketed(self.host.lower()))
        return frozenset(names)

    @property
    def cookie_name(self) -> str:
        """Cookies ignore ports: two servers on one machine must not overwrite each other's."""
        return f"sweepctl-token-{self.port}"


def _bracketed(host: str) -> str:
    """An IPv6 address as a Host header carries it: in brackets."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host
