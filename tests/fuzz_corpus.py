"""A corpus of malformed specs and data files, each a case that must end in one line and
exit 2 with nothing written (tests/test_bad_input_corpus.py).

A case is a name, a change to a valid spec (a function of the spec dict, or the raw bytes
of the spec file), data files to write, and a fragment the one error line must contain
(the field or file it names)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Spec = dict[str, Any]
LABELED = [["great film", "pos"], ["awful plot", "neg"], ["loved it", "pos"], ["so dull", "neg"]]


@dataclass(frozen=True)
class Case:
    name: str
    expect: str  # a fragment of the one error line
    change: Callable[[Spec], Spec] | None = None
    raw: bytes | None = None  # the spec file's bytes, instead of a changed spec
    files: dict[str, str] = field(default_factory=dict)  # data file name -> its text


def _set(path: str, value: Any) -> Callable[[Spec], Spec]:
    def change(spec: Spec) -> Spec:
        spec = copy.deepcopy(spec)
        *parents, last = path.split(".")
        node = spec
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
        return spec

    return change


def _drop(key: str) -> Callable[[Spec], Spec]:
    return lambda spec: {k: v for k, v in spec.items() if k != key}


def _space(**params: Any) -> Callable[[Spec], Spec]:
    return _set("search_space", params)


LR = {"type": "float", "low": 1e-5, "high": 1e-3, "log": True, "ofat": [1e-4]}
WD = {"type": "float", "low": 0.0, "high": 0.1, "ofat": [0.1]}


def _stages(*stages: dict[str, Any]) -> Callable[[Spec], Spec]:
    def change(spec: Spec) -> Spec:
        spec = _space(learning_rate=LR, weight_decay=WD)(spec)
        spec["training"] = {**spec["training"], "weight_decay": 0.0}
        spec["stages"] = list(stages)
        return spec

    return change


def _train_csv(text: str) -> dict[str, str]:
    return {"train.csv": text}


ALIAS_BOMB = (
    b'a: &a ["x","x","x","x","x","x","x","x","x","x"]\n'
    + b"".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{','.join(['*' + chr(97 + i)] * 10)}]\n".encode()
        for i in range(7)
    )
    + b"name: *h\n"
)

TEXT_CASES = [
    Case("non-utf8 bytes", "expected UTF-8", raw=b"name: caf\xe9\nmodel: x\n"),
    Case("utf16 with bom", "expected UTF-8", raw="name: x\n".encode("utf-16")),
    Case("empty spec file", "empty file", raw=b""),
    Case("whitespace only", "empty file", raw=b"   \n\n"),
    Case("a list at the top", "expected a YAML mapping", raw=b"- name: x\n"),
    Case("a scalar at the top", "expected a YAML mapping", raw=b"just words\n"),
    Case("5000-deep sequences", "nested deeper than", raw=b"name: " + b"[" * 5000 + b"]" * 5000),
    Case(
        "5000-deep mappings", "nested deeper than", raw=b"a: " + b"{b: " * 5000 + b"1" + b"}" * 5000
    ),
    Case("alias bomb", "alias", raw=ALIAS_BOMB),
    Case("duplicate top-level key", "duplicate key 'name'", raw=b"name: a\nname: b\nmodel: m\n"),
    Case(
        "duplicate nested key",
        "duplicate key 'learning_rate'",
        raw=b"name: a\ntraining:\n  learning_rate: 1\n  learning_rate: 2\n",
    ),
    Case("broken yaml", "invalid YAML", raw=b"name: [unclosed\nmodel: x\n"),
    Case("tab indentation", "invalid YAML", raw=b"name: a\ntraining:\n\tseed: 1\n"),
]

SPEC_CASES = [
    Case("missing name", "name: required key is missing", _drop("name")),
    Case("bad name characters", "name:", _set("name", "my sweep/1")),
    Case("unknown top-level key", "unknown key", _set("learnin_rate", 1)),
    Case("unknown training key", "training.learnin_rate", _set("training.learnin_rate", 1)),
    Case("owned training key", "training.output_dir", _set("training.output_dir", "/tmp")),
    Case("learning rate fast", "training.learning_rate", _set("training.learning_rate", "fast")),
    Case("learning rate -1", "training.learning_rate", _set("training.learning_rate", -1)),
    Case(
        "learning rate nan", "training.learning_rate", _set("training.learning_rate", float("nan"))
    ),
    Case("learning rate 0", "training.learning_rate", _set("training.learning_rate", 0)),
    Case(
        "batch size 0",
        "per_device_train_batch_size",
        _set("training.per_device_train_batch_size", 0),
    ),
    Case(
        "eval batch -3",
        "per_device_eval_batch_size",
        _set("training.per_device_eval_batch_size", -3),
    ),
    Case(
        "batch size 8.5",
        "per_device_train_batch_size",
        _set("training.per_device_train_batch_size", 8.5),
    ),
    Case(
        "accumulation 0",
        "gradient_accumulation_steps",
        _set("training.gradient_accumulation_steps", 0),
    ),
    Case("epochs -1", "training.num_train_epochs", _set("training.num_train_epochs", -1)),
    Case(
        "epochs inf", "training.num_train_epochs", _set("training.num_train_epochs", float("inf"))
    ),
    Case("epochs 1e30", "training.num_train_epochs", _set("training.num_train_epochs", 1e30)),
    Case("seed abc", "training.seed", _set("training.seed", "abc")),
    Case("seed true", "training.seed", _set("training.seed", True)),
    Case("seed 1.5", "training.seed", _set("training.seed", 1.5)),
    Case("max_steps 0", "training.max_steps", _set("training.max_steps", 0)),
    Case("warmup ratio 2", "training.warmup_ratio", _set("training.warmup_ratio", 2.0)),
    Case("weight decay negative", "training.weight_decay", _set("training.weight_decay", -0.1)),
    Case("eval strategy no", "eval_strategy", _set("training.eval_strategy", "no")),
    Case("patience 0", "early_stopping_patience", _set("training.early_stopping_patience", 0)),
    Case("metric unknown", "objective.metric", _set("objective.metric", "auc")),
    Case("direction sideways", "objective.direction", _set("objective.direction", "sideways")),
    Case("max_length 4", "dataset.max_length", _set("dataset.max_length", 4)),
    Case("wandb mode loud", "tracking.wandb.mode", _set("tracking.wandb.mode", "loud")),
    Case(
        "searched lr from 0",
        "search_space.learning_rate",
        _space(learning_rate={**LR, "log": False, "low": 0.0}),
    ),
    Case("low above high", "search_space.learning_rate", _space(learning_rate={**LR, "low": 1e-2})),
    Case("log scale from 0", "search_space.weight_decay", _space(weight_decay={**WD, "log": True})),
    Case(
        "ofat outside range",
        "search_space.learning_rate",
        _space(learning_rate={**LR, "ofat": [0.5]}),
    ),
    Case(
        "ofat not a choice",
        "search_space.warmup_steps",
        _space(warmup_steps={"type": "categorical", "choices": [0, 100], "ofat": [50]}),
    ),
    Case(
        "batch size choice 0",
        "search_space.per_device_train_batch_size",
        _space(per_device_train_batch_size={"type": "categorical", "choices": [0, 8]}),
    ),
    Case(
        "unknown parameter type",
        "search_space.learning_rate",
        _space(learning_rate={"type": "loguniform"}),
    ),
    Case("unknown strategy", "stages.0", _stages({"name": "s", "strategy": "hill-climb"})),
    Case(
        "top 5 of 2",
        "parameters.top: 5",
        _stages(
            {"name": "s", "strategy": "ofat"},
            {"name": "g", "strategy": "grid", "parameters": {"top": 5, "from": "s"}},
        ),
    ),
    Case(
        "top from a grid stage",
        "not an earlier OFAT stage",
        _stages(
            {"name": "g", "strategy": "grid"},
            {"name": "h", "strategy": "grid", "parameters": {"top": 1, "from": "g"}},
        ),
    ),
    Case(
        "duplicate stage names",
        "duplicate stage name",
        _stages({"name": "s", "strategy": "ofat"}, {"name": "s", "strategy": "ofat"}),
    ),
    Case("random without n_trials", "needs n_trials", _stages({"name": "r", "strategy": "random"})),
    Case(
        "grid values outside",
        "outside the search space",
        _stages({"name": "g", "strategy": "grid", "values": {"learning_rate": [5.0]}}),
    ),
    Case("negative gpus", "resources.gpus_per_trial", _set("resources", {"gpus_per_trial": -1})),
    Case("timeout soon", "resources.trial_timeout", _set("resources", {"trial_timeout": "soon"})),
    Case(
        "heartbeat 0", "resources.heartbeat_interval", _set("resources", {"heartbeat_interval": 0})
    ),
    Case("retry on nan", "retries.on", _set("retries", {"on": ["nan"]})),
    Case("max attempts 0", "retries.max_attempts", _set("retries", {"max_attempts": 0})),
    Case("patience without pruner", "pruning", _set("pruning", {"patience": 2})),
    Case("model directory missing", "model", _set("model", "/nonexistent/model-dir")),
]

HEADER = "text,label\n"


def _int_labels(train_rows: str, validation_rows: str = "e,0\nf,1\n") -> dict[str, str]:
    """Integer labels in train, and a validation file that agrees with them."""
    return {"train.csv": HEADER + train_rows, "validation.csv": HEADER + validation_rows}


DATA_CASES = [
    Case("zero-byte train file", "empty file (0 bytes)", files=_train_csv("")),
    Case("header only", "has no rows", files=_train_csv(HEADER)),
    Case(
        "unknown text column",
        "dataset.text_fields: column 'review'",
        _set("dataset.text_fields", ["review"]),
    ),
    Case(
        "unknown label column",
        "dataset.label_field: column 'sentiment'",
        _set("dataset.label_field", "sentiment"),
    ),
    Case(
        "empty label",
        "empty or NaN label",
        files=_train_csv(HEADER + "great film,pos\nawful plot,\nok,neg\n"),
    ),
    Case("nan label", "empty or NaN label", files=_int_labels("a,1\nb,\nc,0\nd,1\n")),
    Case("delimiter 123", "dataset", _set("dataset.delimiter", 123)),
    Case("labels 0 and 5", "0..K-1", files=_int_labels("a,0\nb,5\nc,0\nd,5\n", "e,0\nf,5\n")),
    Case(
        "validation label not in train",
        "never appear in train",
        files={"validation.csv": HEADER + "a,pos\nb,meh\n"},
    ),
    Case(
        "single-class train",
        "single label",
        files={"train.csv": HEADER + "a,pos\nb,pos\nc,pos\n", "validation.csv": HEADER + "d,pos\n"},
    ),
    Case(
        "missing data file",
        "file not found",
        _set("dataset.data_files.train", "/nonexistent/train.csv"),
    ),
    Case("label_map missing a key", "dataset.label_map", _set("dataset.label_map", {"pos": 1})),
    Case(
        "data and class files", "dataset", _set("dataset.class_files", {"a": "x.csv", "b": "y.csv"})
    ),
    Case(
        "one class file",
        "dataset",
        lambda s: _set("dataset.class_files", {"a": "x.csv"})(_drop_data_files(s)),
    ),
    Case("unknown dataset key", "dataset.quotechr", _set("dataset.quotechr", "'")),
    Case("binary garbage csv", "dataset", files=_train_csv("\x00\x01\x02,\x03\n\x04")),
]


def _drop_data_files(spec: Spec) -> Spec:
    spec = copy.deepcopy(spec)
    spec["dataset"].pop("data_files", None)
    return spec


CORPUS: list[Case] = [*TEXT_CASES, *SPEC_CASES, *DATA_CASES]
