"""`sweepctl launch --server URL SPEC`: hand a validated spec to a running server.

The CLI validates first (same messages, data paths made absolute against the spec file),
then posts the spec and returns: the sweep goes on in the server after this exits.
The token comes from SWEEPCTL_TOKEN or, for a server on this machine, its token file.
Plain urllib, so the CLI needs no HTTP client package.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from rich.console import Console

from sweepctl.service.token import client_token
from sweepctl.spec.errors import UsageError

TIMEOUT_S = 60.0


def submit(server: str, spec: Any, console: Console) -> int:
    from sweepctl.spec.models import spec_to_dict

    base = server.rstrip("/")
    body = json.dumps({"spec": spec_to_dict(spec), "source": spec.name}).encode()
    reply = _post(f"{base}/api/v1/sweeps", body)
    console.print(
        f"submitted sweep {reply['name']} (id {reply['id']}) to {base}: "
        f"{base}{reply['url']}  (sweepctl status {reply['name']} / watch / export)"
    )
    return 0


def _post(url: str, body: bytes) -> dict[str, Any]:
    from sweepctl.storage import sweepctl_home

    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    token = client_token(sweepctl_home())  # SWEEPCTL_TOKEN, else a local server's token file
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise UsageError(f"--server: {url}: {exc.code} {_detail(exc)}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise UsageError(f"--server: cannot reach {url}: {reason}") from None


def _detail(exc: urllib.error.HTTPError) -> str:
    try:
        detail = json.loads(exc.read()).get("detail")
    except (ValueError, AttributeError):
        return exc.reason
    return detail if isinstance(detail, str) else json.dumps(detail)
