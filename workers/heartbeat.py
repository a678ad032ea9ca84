"""A running trial's pulse: a thread that beats into the trial's row.

Why a thread and not a Trainer callback: a beat must arrive while the model loads,
while a long evaluation runs and while a data loader stalls, none of which calls back.
A process that is frozen (SIGSTOP) or gone stops every thread at once, which is exactly
what the orchestrator must see. The thread owns its own Store, so a beat never waits
behind the trial's own writes on a shared connection. The first beat comes at once and
names the process (`worker@host:pid`), so the record says where a trial ran or hung.
"""

from __future__ import annotations

import logging
import threading

from sweepctl.storage import Store, StoreError, owner_name

log = logging.getLogger("sweepctl.heartbeat")


class Heartbeat:
    def __init__(self, db_url: str, trial_id: int, interval_s: float) -> None:
        self.db_url, self.trial_id, self.interval_s = db_url, trial_id, interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="sweepctl-heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _beat(self) -> None:
        store = None
        try:
            store = Store(self.db_url)
            if store.heartbeat(self.trial_id, worker=owner_name("worker")).is_finished:
                return
            while not self._stop.wait(self.interval_s):
                if store.heartbeat(self.trial_id).is_finished:
                    return  # cancelled or given up elsewhere: nothing left to signal
        except StoreError as exc:  # the store is down: the orchestrator will notice
            log.warning("trial %s: heartbeat stopped: %s", self.trial_id, exc)
        finally:
            if store is not None:
                store.close()
