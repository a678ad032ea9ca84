"""The spec is validated at the edge: every error is one line naming the field path."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from sweepctl.cli import main
from sweepctl.spec.errors import SpecError
from sweepctl.spec.models import load_spec, parse_spec
from sweepctl.spec.overrides import apply_overrides, parse_assignments

BASE: dict[str, Any] = {
    "name": "demo",
    "model": "bert-base-uncased",
    "dataset": {
        "path": "csv",
        "data_files": {"train": "data/train.tsv", "validation": "data/dev.tsv"},
        "delimiter": "\t",
        "text_fields": ["sentence"],
    },
    "training": {"learning_rate": 2.0e-5, "num_train_epochs": 3, "eval_strategy": "epoch"},
    "search_space": {
        "learning_rate": {
            "type": "float",
            "low": 1.0e-5,
            "high": 5.0e-5,
            "log": True,
            "ofat": [1.0e-5, 5.0e-5],
        },
        "warmup_steps": {"type": "int", "low": 0, "high": 500, "ofat": [0, 200]},
        "hidden_dropout_prob": {"type": "float", "low": 0.0, "high": 0.3},
    },
}


def parse(data: dict[str, Any]) -> Any:
    return parse_spec(data, "spec.yaml", Path("/specs"))


def mutated(path: str, value: Any) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    *parents, last = path.split(".")
    node = data
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value
    return data


def test_valid_spec_resolves_data_paths_against_the_spec_file() -> None:
    spec = parse(BASE)
    assert spec.dataset.data_files == {
        "train": "/specs/data/train.tsv",
        "validation": "/specs/data/dev.tsv",
    }
    assert spec.dataset.builder_kwargs == {"delimiter": "\t"}
    assert spec.objective.metric == "f1" and spec.objective.maximize
    assert spec.search_space["learning_rate"].log is True


def test_hub_dataset_files_are_left_alone() -> None:
    data = mutated(
        "dataset",
        {"path": "nyu-mll/glue", "name": "mrpc", "text_fields": ["sentence1", "sentence2"]},
    )
    assert parse(data).dataset.data_files is None


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (
            "training.learnin_rate",
            1e-5,
            "spec.yaml: training.learnin_rate: unknown key: not a TrainingArguments field "
            "(did you mean 'learning_rate'?)",
        ),
        ("modle", "x", "spec.yaml: modle: unknown key (did you mean 'model'?)"),
        (
            "dataset.delimter",
            ",",
            "spec.yaml: dataset.delimter: unknown key: not a sweepctl "
            "dataset key nor an argument of the csv builder (did you mean 'delimiter'?)",
        ),
        ("training.output_dir", "/tmp/x", "spec.yaml: training.output_dir: set by sweepctl"),
        (
            "training.eval_strategy",
            "no",
            "spec.yaml: training.eval_strategy: expected 'epoch' or 'steps'",
        ),
        ("training.lr_scheduler_type", "bogus", "spec.yaml: training: bogus is not a valid"),
        (
            "training.early_stopping_patience",
            0,
            "spec.yaml: training.early_stopping_patience: expected a positive integer",
        ),
        (
            "dataset.text_fields",
            ["a", "b", "c"],
            "spec.yaml: dataset.text_fields: List should have at most 2 items",
        ),
        (
            "dataset.validation_split",
            1.5,
            "spec.yaml: dataset.validation_split: Input should be less than 1",
        ),
        (
            "objective.metric",
            "f2",
            "spec.yaml: objective.metric: unknown metric 'f2'; expected one of loss, accuracy, f1,",
        ),
        (
            "objective.metric",
            "accuracyy",
            "spec.yaml: objective.metric: unknown metric 'accuracyy' (did you mean 'accuracy'?)",
        ),
        (
            "search_space.learning_rate.low",
            -1.0,
            "spec.yaml: search_space.learning_rate: log scale needs low > 0",
        ),
        (
            "search_space.warmup_steps.ofat",
            [0, 900],
            "spec.yaml: search_space.warmup_steps: ofat values [900] lie outside [0, 500]",
        ),
        ("search_space.x", {"type": "flot"}, "spec.yaml: search_space.x: Input tag 'flot'"),
        (
            "search_space.save_strategy",
            {"type": "categorical", "choices": ["no"]},
            "spec.yaml: search_space.save_strategy: set by sweepctl and cannot be searched",
        ),
        ("name", "../escape", "spec.yaml: name: expected 1-100 characters"),
        (
            "dataset.class_files",
            {"a": "a.csv", "b": "b.csv"},
            "spec.yaml: dataset: give either data_files or class_files, not both",
        ),
    ],
)
def test_spec_errors_name_the_field(path: str, value: Any, message: str) -> None:
    with pytest.raises(SpecError) as caught:
        parse(mutated(path, value))
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


def test_missing_required_key() -> None:
    data = copy.deepcopy(BASE)
    del data["model"]
    with pytest.raises(SpecError, match=r"^spec.yaml: model: required key is missing$"):
        parse(data)


def test_a_misspelt_required_key_is_named_first_with_a_suggestion_then_as_missing(
    tmp_path: Path, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = copy.deepcopy(BASE)
    data["nmae"] = data.pop("name")
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    assert main(["validate", str(path)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"sweepctl: error: {path}: nmae: unknown key (did you mean 'name'?)",
        f"{path}: name: required key is missing",
    ]


def test_yaml_errors_and_missing_files(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="spec file not found"):
        load_spec(tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(SpecError, match=r"bad.yaml: line \d+: invalid YAML"):
        load_spec(bad)
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("just text\n")
    with pytest.raises(SpecError, match="expected a YAML mapping"):
        load_spec(scalar)


def test_exponent_floats_without_a_dot_are_floats(tmp_path: Path) -> None:
    """`2e-5` is a string in plain YAML 1.1; a learning rate must never load as text."""
    path = tmp_path / "s.yaml"
    path.write_text(
        "name: s\nmodel: m\ndataset: {path: imdb, text_fields: [text]}\n"
        "training: {learning_rate: 2e-5, weight_decay: 1e-2}\n"
    )
    spec = load_spec(path)
    assert spec.training["learning_rate"] == pytest.approx(2e-5)
    assert isinstance(spec.training["weight_decay"], float)


def test_overrides_route_each_name_where_it_takes_effect() -> None:
    spec = parse(BASE)
    params = parse_assignments(
        [
            "learning_rate=3e-5",
            "max_length=64",
            "hidden_dropout_prob=0.2",
            "dataset.train_size=100",
            "early_stopping_patience=2",
        ]
    )
    assert params["learning_rate"] == pytest.approx(3e-5)
    updated = apply_overrides(spec, params)
    assert updated.training["learning_rate"] == pytest.approx(3e-5)
    assert updated.training["early_stopping_patience"] == 2
    assert updated.dataset.max_length == 64
    assert updated.dataset.train_size == 100
    assert updated.model_args == {"hidden_dropout_prob": 0.2}
    assert spec.training["learning_rate"] == pytest.approx(2e-5)  # the original is untouched


@pytest.mark.parametrize(
    ("assignment", "message"),
    [
        ("learning_rate", "--set 'learning_rate': expected KEY=VALUE"),
        (
            "dataset.max_length=2",
            "--set: dataset.max_length: Input should be greater than or equal to 8",
        ),
        ("nosuch.key=1", "--set nosuch.key: 'nosuch' is not a section of the spec"),
        ("eval_strategy=no", "--set: training.eval_strategy: expected 'epoch' or 'steps'"),
    ],
)
def test_bad_overrides(assignment: str, message: str) -> None:
    with pytest.raises(SpecError) as caught:
        apply_overrides(parse(BASE), parse_assignments([assignment]))
    assert str(caught.value).startswith(message)


def test_bare_top_level_keys_are_not_taken_for_model_config() -> None:
    updated = apply_overrides(parse(BASE), {"model": "distilbert-base-uncased"})
    assert updated.model == "distilbert-base-uncased"
    assert updated.model_args == {}
