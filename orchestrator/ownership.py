"""One orchestrator per sweep: take the store's lease, keep it renewed, let it go.

The lease lasts 3 heartbeat intervals and is renewed every interval by a thread, so it
outlives a busy main loop (an inline trial, a slow sampler) but not a process that is
killed or frozen. When a renewal finds the lease taken over (ours expired while we were
stopped), `lost` is set and the sweep loop stops without writing anything more.
"""

from __future__ import annotations

import logging
import threading

from sweepctl.storage import Store, StoreError, owner_name

log = logging.getLogger("sweepctl.lease")


class LeaseLostError(RuntimeError):
    """Another orchestrator took the sweep over while this one was stalled."""


class LeaseKeeper:
    def __init__(self, store: Store, sweep: str, interval_s: float, role: str) -> None:
        self.store, self.sweep, self.interval_s = store, sweep, interval_s
        self.owner = owner_name(role)
        self.ttl_s = 3 * interval_s
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew, name="sweepctl-lease", daemon=True)

    def __enter__(self) -> LeaseKeeper:
        self.store.acquire_lease(self.sweep, self.owner, self.ttl_s)  # LeaseHeldError: exit 2
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        if not self.lost.is_set():
            try:
                self.store.release_lease(self.sweep, self.owner)
            except StoreError as exc:  # it expires by itself
                log.warning("sweep %s: could not release the lease: %s", self.sweep, exc)

    def check(self) -> None:
        if self.lost.is_set():
            raise LeaseLostError(
                f"sweep {self.sweep!r}: another orchestrator took it over; this one stops"
            )

    def _renew(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                if not self.store.renew_lease(self.sweep, self.owner, self.ttl_s):
                    self.lost.set()
                    return
            except StoreError as exc:  # the store is down: try again next beat
                log.warning("sweep %s: lease renewal failed: %s", self.sweep, exc)
