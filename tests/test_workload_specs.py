"""The workload specs in sweeps/: they load, they say what their users published, and their
data settings really read data in the format those users download.

The real runs need the network and a GPU. Here every workload gets a small fixture written
in the same format as its real data (header or not, encoding, columns, label values, hub
ClassLabels, unlabeled splits), the spec is pointed at it with only the file locations and
the model changed, and the real data + tokenizer + model path (`prepare_trial`) runs on it.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from sweepctl.cli import main
from sweepctl.spec.errors import DataError
from sweepctl.spec.models import FILE_BUILDERS, SweepSpec, load_spec, tunable_parameter_kind
from sweepctl.spec.overrides import apply_overrides
from sweepctl.workers.data import build_splits
from sweepctl.workers.trial import PreparedTrial, prepare_trial
from tests.workload_data import (
    CEFR_LEVELS,
    write_cefr,
    write_imdb,
    write_isot,
    write_mrpc,
    write_sentiment140,
)

SWEEPS = Path(__file__).resolve().parents[1] / "sweeps"
SPEC_FILES = sorted(SWEEPS.glob("*.yaml"))

FIVE_WORKLOADS = (
    "imdb-bert",
    "sentiment140-bert",
    "mrpc-distilbert",
    "fakenews-mobilebert",
    "cefr-deberta",
)
SENTIMENT140_COLUMNS = ["target", "ids", "date", "flag", "user", "text"]

# What each workload's users published, as dotted spec keys.
PUBLISHED: dict[str, dict[str, Any]] = {
    "imdb-bert": {
        "model": "bert-base-uncased",
        "dataset.path": "stanfordnlp/imdb",
        "dataset.name": None,
        "dataset.splits": {"train": "train", "validation": "test", "test": None},
        "dataset.text_fields": ["text"],
        "dataset.label_field": "label",
        "dataset.label_map": None,
        "dataset.train_size": 2000,
        "dataset.eval_size": 500,
        "dataset.max_length": 128,
        "training.per_device_train_batch_size": 16,
        "training.num_train_epochs": 3,
        "training.learning_rate": 2.0e-5,
        "training.weight_decay": 0.01,
        "objective.metric": "f1",
    },
    "sentiment140-bert": {
        "model": "bert-base-uncased",
        "dataset.path": "csv",
        "dataset.column_names": SENTIMENT140_COLUMNS,
        "dataset.encoding": "latin-1",
        "dataset.text_fields": ["text"],
        "dataset.label_field": "target",
        "dataset.label_map": {0: 0, 4: 1},
        "dataset.validation_split": 0.1,
        "dataset.test_split": None,
        "dataset.train_size": 20000,
        "dataset.eval_size": 2000,
        "dataset.max_length": 70,
        "training.per_device_train_batch_size": 32,
        "training.num_train_epochs": 2,
        "training.learning_rate": 2.0e-5,
    },
    "mrpc-distilbert": {
        "model": "distilbert-base-uncased",
        "dataset.path": "nyu-mll/glue",
        "dataset.name": "mrpc",
        "dataset.splits": {"train": "train", "validation": "validation", "test": None},
        "dataset.text_fields": ["sentence1", "sentence2"],
        "dataset.label_field": "label",
        "dataset.max_length": 128,
        "training.per_device_train_batch_size": 16,
        "training.per_device_eval_batch_size": 32,
        "training.num_train_epochs": 3,
        "training.learning_rate": 2.0e-5,
        "objective.metric": "f1",
    },
    "fakenews-mobilebert": {
        "model": "google/mobilebert-uncased",
        "dataset.path": "csv",
        "dataset.data_files": None,
        "dataset.text_fields": ["text"],
        "dataset.validation_split": 0.1,
        "dataset.test_split": 0.1,
        "dataset.max_length": 256,
        "training.per_device_train_batch_size": 16,
        "training.per_device_eval_batch_size": 32,
        "training.warmup_steps": 500,
        "training.early_stopping_patience": 2,
        "training.num_train_epochs": 3,
        "training.learning_rate": 2.0e-5,
        "objective.metric": "f1",
    },
    "cefr-deberta": {
        "model": "microsoft/deberta-v3-small",
        "dataset.path": "csv",
        "dataset.text_fields": ["text"],
        "dataset.label_field": "label",
        "dataset.validation_split": 0.1,
        "dataset.test_split": 0.1,
        "dataset.max_length": 800,
        "training.per_device_train_batch_size": 4,
        "training.num_train_epochs": 5,
        "training.learning_rate": 2.0e-5,
        "objective.metric": "accuracy",
    },
}
# Where the (user-downloaded) data files of the file-based workloads live, beside the spec.
PUBLISHED_FILES = {
    "sentiment140-bert": {
        "data_files": {"train": "data/sentiment140/training.1600000.processed.noemoticon.csv"}
    },
    "fakenews-mobilebert": {
        "class_files": {"real": "data/isot/True.csv", "fake": "data/isot/Fake.csv"}
    },
    "cefr-deberta": {"data_files": {"train": "data/cefr/cefr_texts.csv"}},
}
# model_type of each hub model, so searched config keys are checked with no download.
MODEL_TYPES = {
    "bert-base-uncased": "bert",
    "distilbert-base-uncased": "distilbert",
    "google/mobilebert-uncased": "mobilebert",
    "microsoft/deberta-v3-small": "deberta-v2",
}


def dotted(data: dict[str, Any], key: str) -> Any:
    node: Any = data
    for part in key.split("."):
        node = node[part]
    return node


def local_data_files(spec: SweepSpec) -> list[str]:
    if spec.dataset.path not in FILE_BUILDERS:
        return []
    sources = {**(spec.dataset.data_files or {}), **(spec.dataset.class_files or {})}
    return [f for files in sources.values() for f in ([files] if isinstance(files, str) else files)]


def write_at_spec_paths(name: str, spec: SweepSpec) -> None:
    """Put the fixture exactly where a file-based spec expects the user's download."""
    dataset = spec.dataset
    if name == "sentiment140-bert":
        write_sentiment140(Path(dataset.data_files["train"]))
    elif name == "fakenews-mobilebert":
        write_isot(Path(dataset.class_files["real"]), Path(dataset.class_files["fake"]))
    elif name == "cefr-deberta":
        write_cefr(Path(dataset.data_files["train"]))


def fixture_spec(name: str, source: dict[str, Any], model_dir: Path) -> SweepSpec:
    """The published spec with only the data location and the model swapped."""
    published = load_spec(SWEEPS / f"{name}.yaml")
    overrides = {**source, "tracking.wandb.mode": "disabled", "model": str(model_dir)}
    spec = apply_overrides(published, overrides)
    moved = {"path", "data_files", "class_files", *(k.split(".")[1] for k in source if "." in k)}
    kept = {k: v for k, v in published.dataset.model_dump().items() if k not in moved}
    assert {k: v for k, v in spec.dataset.model_dump().items() if k not in moved} == kept
    return spec


def lengths(prepared: PreparedTrial) -> list[int]:
    return [len(ids) for split in prepared.data.splits.values() for ids in split["input_ids"]]


def label_counts(prepared: PreparedTrial, role: str) -> dict[str, int]:
    names = prepared.data.label_names
    return dict(Counter(names[i] for i in prepared.data.splits[role]["labels"]))


def rows(prepared: PreparedTrial) -> dict[str, int]:
    return {role: len(split) for role, split in prepared.data.splits.items()}


# --- every spec in sweeps/ ------------------------------------------------------------------


@pytest.mark.parametrize("path", SPEC_FILES, ids=lambda p: p.stem)
def test_every_spec_loads_and_validates(
    path: Path, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert path.read_text(encoding="utf-8").startswith("#"), "header comment missing"
    spec = load_spec(path)
    assert spec.search_space, "a sweep spec needs a search space"
    missing = [f for f in local_data_files(spec) if not Path(f).is_file()]
    code = main(["validate", str(path)])
    out, err = capsys.readouterr()
    if missing:  # a user download that is not on this machine: named, exit 2
        assert code == 2
        assert f"file not found: {missing[0]}" in err
    else:
        assert code == 0, err
        assert f"ok — sweep '{spec.name}'" in out


def test_the_five_workloads_are_there() -> None:
    assert {p.stem for p in SPEC_FILES} >= set(FIVE_WORKLOADS)


@pytest.mark.parametrize("name", FIVE_WORKLOADS)
def test_published_settings(name: str) -> None:
    spec = load_spec(SWEEPS / f"{name}.yaml")
    data = spec.model_dump()
    for key, expected in PUBLISHED[name].items():
        value = dotted(data, key)
        assert value == expected, key
        assert type(value) is type(expected), key  # 2e-5 must not load as a string
    for section, files in PUBLISHED_FILES.get(name, {}).items():
        resolved = {k: str((SWEEPS / v).resolve()) for k, v in files.items()}
        assert data["dataset"][section] == resolved
    assert spec.name == name
    assert spec.eval_strategy == "epoch"
    assert spec.tracking.wandb.mode == "auto"
    assert spec.tracking.wandb.project == "sweepctl"


@pytest.mark.parametrize("name", FIVE_WORKLOADS)
def test_search_space_and_model_config_names(name: str) -> None:
    from transformers import AutoConfig

    spec = load_spec(SWEEPS / f"{name}.yaml")
    space = spec.search_space
    lr, wd, warmup = space["learning_rate"], space["weight_decay"], space["warmup_steps"]
    assert (lr.type, lr.low, lr.high, lr.log) == ("float", 1.0e-5, 5.0e-5, True)
    assert lr.ofat and spec.training["learning_rate"] not in lr.ofat
    assert (wd.type, wd.low, wd.high) == ("float", 0.0, 0.1)
    assert (warmup.type, warmup.low, warmup.high) == ("int", 0, 500)
    # dropout names are model-config keys and must exist in this model's config class
    config = AutoConfig.for_model(MODEL_TYPES[spec.model])
    searched = [n for n in space if tunable_parameter_kind(n) == "model"]
    assert searched
    for key in searched:
        assert hasattr(config, key), f"{key} is not a {config.model_type} config setting"
    expected = ["dropout", "attention_dropout"] if name == "mrpc-distilbert" else None
    assert searched == (expected or ["hidden_dropout_prob"])


@pytest.mark.parametrize("name", ["sentiment140-bert", "fakenews-mobilebert", "cefr-deberta"])
def test_file_specs_validate_with_the_download_beside_them(
    name: str, tmp_path: Path, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = tmp_path / "sweeps" / f"{name}.yaml"
    copy.parent.mkdir()
    shutil.copy(SWEEPS / f"{name}.yaml", copy)
    assert main(["validate", str(copy)]) == 2
    assert f"file not found: {tmp_path / 'sweeps' / 'data'}" in capsys.readouterr().err
    write_at_spec_paths(name, load_spec(copy))
    assert main(["validate", str(copy)]) == 0
    assert f"ok — sweep '{name}'" in capsys.readouterr().out


# --- each workload's data path on a fixture in its real format ------------------------------


def test_imdb_from_hub_format(tmp_path: Path, tiny_model_dir: Path, home: Path) -> None:
    files = write_imdb(tmp_path / "imdb")
    spec = fixture_spec(
        "imdb-bert", {"dataset.path": "parquet", "dataset.data_files": files}, tiny_model_dir
    )
    prepared = prepare_trial(spec, {}, home)
    assert prepared.data.label_names == ["neg", "pos"]  # the hub ClassLabel names, in order
    # hub test plays validation; the unlabeled split is never read; no test split
    assert rows(prepared) == {"train": 24, "validation": 16}
    assert prepared.data.test is None
    assert label_counts(prepared, "validation") == {"neg": 8, "pos": 8}
    assert max(lengths(prepared)) == 128
    assert prepared.model.config.id2label == {0: "neg", 1: "pos"}


def test_sentiment140_headerless_latin1(tmp_path: Path, tiny_model_dir: Path, home: Path) -> None:
    path = tmp_path / "sentiment140" / "training.1600000.processed.noemoticon.csv"
    targets = write_sentiment140(path)
    spec = fixture_spec(
        "sentiment140-bert", {"dataset.data_files": {"train": str(path)}}, tiny_model_dir
    )
    prepared = prepare_trial(spec, {}, home)
    assert prepared.data.label_names == ["0", "1"]
    assert rows(prepared) == {"train": 36, "validation": 4}  # 10% carved, stratified
    assert label_counts(prepared, "validation") == {"0": 2, "1": 2}
    assert max(lengths(prepared)) == 70

    splits, _ = build_splits(spec.dataset, spec.seed)
    texts = [t for split in splits.values() for t in split["text"]]
    assert "just got back from the café, naïve me #1" in texts  # decoded as latin-1
    assert len(texts) == len(targets) == 40  # the first row was data, not a header
    for split in splits.values():
        for text, label in zip(split["text"], split["labels"], strict=True):
            assert label == {0: 0, 4: 1}[targets[text]], text


def test_sentiment140_needs_its_builder_arguments(tmp_path: Path, tiny_model_dir: Path) -> None:
    path = tmp_path / "training.1600000.processed.noemoticon.csv"
    write_sentiment140(path)
    spec = fixture_spec(
        "sentiment140-bert", {"dataset.data_files": {"train": str(path)}}, tiny_model_dir
    )
    as_utf8 = apply_overrides(spec, {"dataset.encoding": "utf-8"})
    with pytest.raises(DataError, match="cannot parse 'csv' files"):
        build_splits(as_utf8.dataset, 42)
    with_header = apply_overrides(spec, {"dataset.column_names": None})
    with pytest.raises(DataError, match="column 'text' not in the train split"):
        build_splits(with_header.dataset, 42)


def test_mrpc_pairs_from_hub_format(tmp_path: Path, tiny_model_dir: Path, home: Path) -> None:
    files = write_mrpc(tmp_path / "glue-mrpc")
    spec = fixture_spec(
        "mrpc-distilbert", {"dataset.path": "parquet", "dataset.data_files": files}, tiny_model_dir
    )
    prepared = prepare_trial(spec, {}, home)
    assert prepared.data.label_names == ["not_equivalent", "equivalent"]
    assert rows(prepared) == {"train": 24, "validation": 8}
    assert prepared.data.test is None  # test: null, so the -1 labels are never read
    assert "test" not in prepared.data.splits
    sep = prepared.tokenizer.sep_token_id
    for split in prepared.data.splits.values():
        for ids, segments in zip(split["input_ids"], split["token_type_ids"], strict=True):
            assert ids.count(sep) == 2  # [CLS] sentence1 [SEP] sentence2 [SEP]
            assert set(segments) == {0, 1}
            assert len(ids) <= 128
    assert max(lengths(prepared)) == 128  # the long pair is cut, both segments kept


def test_isot_class_files(tmp_path: Path, tiny_model_dir: Path, home: Path) -> None:
    true_csv, fake_csv = tmp_path / "isot" / "True.csv", tmp_path / "isot" / "Fake.csv"
    write_isot(true_csv, fake_csv)
    spec = fixture_spec(
        "fakenews-mobilebert",
        {"dataset.class_files": {"real": str(true_csv), "fake": str(fake_csv)}},
        tiny_model_dir,
    )
    prepared = prepare_trial(spec, {}, home)
    assert prepared.data.label_names == ["real", "fake"]  # fake is the positive class (1)
    # 10% test carved first, then 10% of the rest as validation; both stratified
    assert rows(prepared) == {"train": 32, "validation": 4, "test": 4}
    for role in ("validation", "test"):
        assert label_counts(prepared, role) == {"real": 2, "fake": 2}
    assert max(lengths(prepared)) == 256
    assert min(lengths(prepared)) == 2  # the empty body: [CLS] [SEP]


def test_cefr_string_levels(tmp_path: Path, tiny_model_dir: Path, home: Path) -> None:
    path = tmp_path / "cefr" / "cefr_texts.csv"
    write_cefr(path)
    spec = fixture_spec(
        "cefr-deberta", {"dataset.data_files": {"train": str(path)}}, tiny_model_dir
    )
    prepared = prepare_trial(spec, {}, home)
    assert prepared.data.label_names == CEFR_LEVELS
    assert prepared.model.config.num_labels == 6
    assert rows(prepared) == {"train": 48, "validation": 6, "test": 6}
    for role in ("validation", "test"):  # stratified: every level in every split
        assert label_counts(prepared, role) == dict.fromkeys(CEFR_LEVELS, 1)
    assert label_counts(prepared, "train") == dict.fromkeys(CEFR_LEVELS, 8)
    assert max(lengths(prepared)) == 800


# --- one real trial end to end --------------------------------------------------------------


def test_fakenews_trial_end_to_end(
    tmp_path: Path,
    tiny_model_dir: Path,
    home: Path,
    sqlite_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    data = yaml.safe_load((SWEEPS / "fakenews-mobilebert.yaml").read_text(encoding="utf-8"))
    data["model"] = str(tiny_model_dir)
    data["tracking"]["wandb"]["mode"] = "disabled"
    spec_path = tmp_path / "fakenews.yaml"
    spec_path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    # the published relative paths, filled beside the copied spec
    write_isot(tmp_path / "data" / "isot" / "True.csv", tmp_path / "data" / "isot" / "Fake.csv")

    args = ["trial", str(spec_path), "--db", sqlite_url, "--json", "--no-progress"]
    code = main([*args, "--set", "num_train_epochs=1"])
    out, err = capsys.readouterr()
    assert code == 0, err
    record = json.loads(out)
    assert record["state"] == "COMPLETED"
    assert record["sweep_name"] == "fakenews-mobilebert"
    assert [e["epoch"] for e in record["evaluations"]] == [1.0]
    assert record["config"]["labels"] == ["real", "fake"]
    assert record["config"]["rows"] == {"train": 32, "validation": 4, "test": 4}
    assert record["config"]["early_stopping_patience"] == 2
    assert record["config"]["training"]["warmup_steps"] == 500
    test = record["metrics"]["test"]
    for key in ("accuracy", "f1", "precision", "recall", "loss"):
        assert isinstance(test[key], float), key
    assert test["labels"] == ["real", "fake"]
    assert test["support"] == {"real": 2, "fake": 2}
    assert sum(map(sum, test["confusion_matrix"])) == 4
