"""Continuation (workers.continuation): a tiny real trial whose worker is SIGKILLed after
the first of its 3 epochs is retried from that epoch's checkpoint, and ends where an
uninterrupted run of the same configuration ends."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from sweepctl.cli import main
from sweepctl.storage import Store, TrialState
from sweepctl.workers.continuation import latest_checkpoint, run_dir
from sweepctl.workers.faults import KILL_AFTER_EPOCH
from tests.conftest import sentiment_rows, write_csv
from tests.fault_helpers import finish, start_sweepctl, tiny_one_point_grid

EPOCHS = 3


@pytest.fixture
def continued_spec(tiny_spec: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    """Three epochs of 10 optimizer steps each, dropout on: enough state (optimizer,
    schedule, RNG) that a continuation which lost any of it would not match."""
    train = write_csv(
        tmp_path / "data" / "big.csv", ["text", "label"], sentiment_rows(8, "pos", "neg")
    )
    spec = tiny_one_point_grid(
        tiny_spec,
        "continued",
        {"num_train_epochs": EPOCHS, "per_device_train_batch_size": 16, "warmup_steps": 5},
    )
    spec["dataset"]["data_files"]["train"] = str(train)
    spec["model_args"] = {"hidden_dropout_prob": 0.1}
    return spec


def _write(tmp_path: Path, spec: dict[str, Any]) -> Path:
    path = tmp_path / f"{spec['name']}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def test_a_worker_killed_after_epoch_1_is_continued_from_its_checkpoint_and_matches(
    tmp_path: Path, home: Path, continued_spec: dict[str, Any]
) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    path = _write(tmp_path, continued_spec)
    process = start_sweepctl(["launch", str(path), "--db", url], home, **{KILL_AFTER_EPOCH: "1"})
    code, _, err = finish(process, timeout=300)
    assert code == 0, err
    with Store(url) as store:
        killed, continued = store.list_trials("continued")
    assert (killed.state, killed.failure_kind) == (TrialState.FAILED, "worker_lost")
    assert [e.epoch for e in killed.evaluations] == [1.0]
    assert (continued.state, continued.retry_of) == (TrialState.COMPLETED, killed.id)
    started = continued.config["continued_from"]
    assert (started["trial_id"], started["epoch"]) == (killed.id, 1.0)
    # each epoch once on the new row: the first copied from the killed try, two trained
    assert [e.epoch for e in continued.evaluations] == [1.0, 2.0, 3.0]
    assert continued.evaluations[0].eval_loss == killed.evaluations[0].eval_loss
    # one checkpoint per finished trial: the killed try's are gone, the new one keeps its best
    assert latest_checkpoint(run_dir(home, "continued", killed.id)) is None
    kept = sorted(p.name for p in run_dir(home, "continued", continued.id).iterdir())
    assert kept == ["best"]

    # the same configuration uninterrupted, in this process
    plain = {**continued_spec, "name": "uninterrupted"}
    assert main(["launch", str(_write(tmp_path, plain)), "--db", url, "--backend", "inline"]) == 0
    with Store(url) as store:
        (reference,) = store.list_trials("uninterrupted")
    assert continued.objective == pytest.approx(reference.objective, abs=1e-6)
    losses = [(e.eval_loss, e.training_loss) for e in continued.evaluations]
    expected = [(e.eval_loss, e.training_loss) for e in reference.evaluations]
    assert losses == [pytest.approx(pair, abs=1e-6) for pair in expected]
    assert continued.metrics["objective_interval"] == reference.metrics["objective_interval"]
