"""The documented staged plan (OFAT, then TPE over every parameter warm-started) reaches
the full grid's best on real NMTLC landscapes, through the same launch path as a sweep.

Two corpora here, one scratch and one LoRA; bench/strategy_efficiency.py covers all eight.
"""

from __future__ import annotations

import pytest

from bench.efficiency_plans import released
from bench.strategy_efficiency import Job, reference_grid, run_job
from tests.conftest import require_shared


@pytest.mark.parametrize("corpus", ["ted-zh-en", "zh-en"])
def test_the_staged_default_reaches_the_full_grids_best_within_tpes_budget(corpus: str) -> None:
    nmtlc = str(require_shared("nmtlc", "nmtlc.json"))
    target = reference_grid(nmtlc, corpus).best
    assert target is not None
    job = Job(released(0, 100), "none", 0, nmtlc, target, corpus, budget=100)
    outcome = run_job(job)
    assert outcome.failed == 0
    assert outcome.reached, f"{corpus}: best {outcome.best} after {outcome.trials_run} trials"
    assert outcome.trials_run <= 100
    assert outcome.repeat_epochs == 0  # no configuration trained twice
