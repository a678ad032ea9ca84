"""Why the orchestrator ended a trial it did not let finish: the `error` of its row.

Plain strings in a module of their own, so `sweepctl cancel` and the server's cancel write
the same words without importing the orchestrator's machinery (Optuna, the study).
"""

from __future__ import annotations

CANCEL_REASON = "cancelled by sweepctl cancel"
CRASH_REASON = "the orchestrator stopped while this trial ran; retried on resume"
INTERRUPT_REASON = "sweepctl was interrupted (Ctrl-C or SIGTERM); retried on resume"
