"""Small data files in the exact formats the workload users download (header or not,
encoding, columns, label values, hub ClassLabels, unlabeled splits), for
test_workload_specs.py."""

from __future__ import annotations

import csv
import random
from pathlib import Path
from typing import Any

from tests.conftest import write_csv

CEFR_LEVELS = ["A1", "A2", "B1", "B2", "C1", "C2"]

WORDS = [
    *("the", "film", "market", "report", "said", "government", "officials", "would", "meet"),
    *("on", "monday", "to", "discuss", "a", "new", "plan", "for", "trade", "and", "public"),
    *("health", "while", "critics", "argued", "that", "proposal", "was", "weak", "voters"),
    *("in", "several", "states", "remained", "unconvinced", "about", "its", "cost"),
]


def prose(words: int, seed: int) -> str:
    """Plain lowercase English words, about one WordPiece token each."""
    rng = random.Random(seed)
    return " ".join(rng.choice(WORDS) for _ in range(words))


def write_sentiment140(path: Path) -> dict[str, int]:
    """Like training.1600000.processed.noemoticon.csv: no header, every field quoted, latin-1,
    targets 0 and 4, HTML entities left in. Returns text -> raw target."""
    negative = ["is upset that he can't update his facebook", "my whole body feels itchy"]
    positive = ["loving the sunshine today", "just got back from the café, naïve me"]
    rows, targets = [], {}
    for i in range(20):
        for target, bases in ((0, negative), (4, positive)):
            text = f"{bases[i % 2]} #{i}"
            if i == 3 and target == 4:  # a tweet full of entities runs past max_length 70
                text = "&quot;so happy&quot; &amp; " * 12 + "£5 well spent"
            targets[text] = target
            tweet_id, date = 1467810369 + len(rows), "Mon Apr 06 22:19:45 PDT 2009"
            rows.append([target, tweet_id, date, "NO_QUERY", f"user_{i}", text])
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="latin-1") as handle:
        csv.writer(handle, quoting=csv.QUOTE_ALL, lineterminator="\n").writerows(rows)
    assert "é".encode("latin-1") in path.read_bytes()  # not valid UTF-8: needs the encoding
    return targets


def write_isot(true_csv: Path, fake_csv: Path) -> None:
    """Like ISOT's True.csv / Fake.csv: header title,text,subject,date; no label column."""
    header = ["title", "text", "subject", "date"]
    real = []
    for i in range(20):
        body = f"WASHINGTON (Reuters) - {prose(300 if i % 5 == 0 else 40, i)}"
        real.append([f"Senate passes budget bill {i}", body, "politicsNews", "December 31, 2017 "])
    fake = []
    for i in range(20):
        body = " " if i == 7 else prose(300 if i % 5 == 0 else 40, 100 + i)  # empty bodies occur
        fake.append([f" BREAKING: You Won't Believe This {i}", body, "News", "December 30, 2017"])
    write_csv(true_csv, header, real)
    write_csv(fake_csv, header, fake)


def write_cefr(path: Path) -> None:
    """A text,label CSV with string CEFR levels, ten passages per level (C1/C2 run long)."""
    rows = []
    for rank, level in enumerate(CEFR_LEVELS):
        for i in range(10):
            words = 900 if level == "C2" and i < 2 else 20 + 40 * rank
            rows.append([prose(words, 1000 * rank + i), level])
    random.Random(0).shuffle(rows)
    write_csv(path, ["text", "label"], rows)


def write_parquet_splits(
    directory: Path, splits: dict[str, dict[str, list[Any]]], features: Any
) -> dict[str, str]:
    """Parquet with the hub's features (ClassLabel) in the schema, as the hub stores them."""
    from datasets import Dataset

    directory.mkdir(parents=True, exist_ok=True)
    files = {}
    for split, columns in splits.items():
        path = directory / f"{split}-00000-of-00001.parquet"
        Dataset.from_dict(columns, features=features).to_parquet(str(path))
        files[split] = str(path)
    return files


def write_imdb(directory: Path) -> dict[str, str]:
    """stanfordnlp/imdb: text + ClassLabel(neg, pos); train, test, and unlabeled (-1)."""
    from datasets import ClassLabel, Features, Value

    def split(n: int, seed: int, labelled: bool = True) -> dict[str, list[Any]]:
        texts = [prose(200 if i % 4 == 0 else 60, seed + i) for i in range(n)]
        return {"text": texts, "label": [i % 2 if labelled else -1 for i in range(n)]}

    features = Features({"text": Value("string"), "label": ClassLabel(names=["neg", "pos"])})
    return write_parquet_splits(
        directory,
        {"train": split(24, 0), "test": split(16, 100), "unsupervised": split(8, 200, False)},
        features,
    )


def write_mrpc(directory: Path) -> dict[str, str]:
    """nyu-mll/glue mrpc: sentence1, sentence2, ClassLabel, idx; test labels are all -1."""
    from datasets import ClassLabel, Features, Value

    def split(n: int, seed: int, labelled: bool = True) -> dict[str, list[Any]]:
        first = [prose(100 if i == 0 else 25, seed + i) for i in range(n)]
        second = [prose(100 if i == 0 else 20, seed + 50 + i) for i in range(n)]
        return {
            "sentence1": first,
            "sentence2": second,
            "label": [i % 2 if labelled else -1 for i in range(n)],
            "idx": list(range(n)),
        }

    features = Features(
        {
            "sentence1": Value("string"),
            "sentence2": Value("string"),
            "label": ClassLabel(names=["not_equivalent", "equivalent"]),
            "idx": Value("int32"),
        }
    )
    return write_parquet_splits(
        directory,
        {"train": split(24, 0), "validation": split(8, 300), "test": split(8, 600, False)},
        features,
    )
