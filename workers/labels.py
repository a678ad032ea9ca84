"""Turning whatever labels a dataset has into the integer ids a classifier trains on.

Users bring 0/1 ints (SST-2), 0/4 ints (Sentiment140, remapped with label_map), strings
(CEFR A1..C2) or hub ClassLabels (IMDB). The mapping is decided once over all splits, so
train, validation and test always agree, and it ends up in the model config (id2label) and
the trial record.
"""

from __future__ import annotations

from typing import Any

from datasets import ClassLabel, Dataset, DatasetDict

from sweepctl.spec.errors import DataError
from sweepctl.spec.models import DatasetSpec


def encode_labels(roles: DatasetDict, spec: DatasetSpec) -> tuple[DatasetDict, list[str]]:
    """Returns the splits with an int ClassLabel column `labels`, and the label names."""
    field = spec.label_field
    feature = next(iter(roles.values())).features[field]
    class_names = feature.names if isinstance(feature, ClassLabel) else None
    raw_values = _unique_values(roles, field)
    _check_labels_seen_in_train(raw_values)
    value_to_name = _value_names(raw_values, class_names, spec)
    preferred = list(spec.class_files or []) or (class_names if not spec.label_map else None)
    label_names, name_to_id = _label_ids(value_to_name, preferred or [])
    lookup = {value: name_to_id[name] for value, name in value_to_name.items()}
    classes = ClassLabel(names=label_names)
    encoded = {}
    for role, split in roles.items():
        mapped = split.map(
            lambda batch, lk=lookup: {"labels": [lk[v] for v in batch[field]]},
            batched=True,
            desc=f"encoding {role} labels",
        )
        if field != "labels":
            mapped = mapped.remove_columns(field)
        encoded[role] = mapped.cast_column("labels", classes)
    return DatasetDict(encoded), label_names


def _unique_values(roles: DatasetDict, field: str) -> dict[str, list[Any]]:
    values: dict[str, list[Any]] = {}
    for role, split in roles.items():
        unique = split.unique(field)
        for value in unique:
            if _is_empty(value):
                row = next(i for i, v in enumerate(split[field]) if _is_empty(v))
                raise DataError(
                    f"dataset.label_field: empty or NaN label '{field}' in the {role} split, "
                    f"row {row + 1}; every row needs a label"
                )
        values[role] = unique
    return values


def _is_empty(value: Any) -> bool:
    return value is None or value != value or (isinstance(value, str) and not value.strip())


def _check_labels_seen_in_train(raw_values: dict[str, list[Any]]) -> None:
    """A label only validation or test has would give the head the wrong number of
    classes and a class the model can never have learned."""
    train = set(raw_values.get("train", []))
    for role, values in raw_values.items():
        unseen = sorted(str(v) for v in values if v not in train)
        if role != "train" and unseen:
            raise DataError(
                f"dataset.label_field: label(s) {', '.join(unseen[:5])} of the {role} split "
                "never appear in train"
            )


def _value_names(
    raw_values: dict[str, list[Any]], class_names: list[str] | None, spec: DatasetSpec
) -> dict[Any, Any]:
    """raw value -> label after label_map (an int id or a string name)."""
    mapping: dict[Any, Any] = {}
    label_map = {str(k): v for k, v in (spec.label_map or {}).items()}
    for role, values in raw_values.items():
        for value in values:
            if label_map:
                if str(value) not in label_map:
                    keys = ", ".join(sorted(label_map))
                    raise DataError(
                        f"dataset.label_map: label {value!r} in the {role} split is not a key "
                        f"of label_map (keys: {keys})"
                    )
                mapping[value] = label_map[str(value)]
            elif class_names is not None and isinstance(value, int) and value >= 0:
                mapping[value] = class_names[value]
            else:
                mapping[value] = value
    return mapping


def _label_ids(
    value_to_name: dict[Any, Any], preferred: list[str]
) -> tuple[list[str], dict[Any, int]]:
    """Names keep a known order (class_files keys, hub ClassLabel names), else sort."""
    targets = set(value_to_name.values())
    if all(isinstance(t, int) and not isinstance(t, bool) for t in targets):
        return _integer_labels(targets)
    known = [name for name in preferred if name in targets]
    names = known + sorted(str(t) for t in targets if t not in known)
    if len(names) < 2:
        raise DataError(f"dataset.label_field: found a single label {names}; need at least two")
    name_to_id = {name: i for i, name in enumerate(names)}
    return names, {t: name_to_id[str(t)] for t in targets}


def _integer_labels(targets: set[int]) -> tuple[list[str], dict[Any, int]]:
    """Ints are taken as class ids already, so they must run 0..K-1."""
    negative = sorted(t for t in targets if t < 0)
    if negative:
        raise DataError(
            f"dataset.label_field: label {negative[0]} is negative; expected class ids "
            "0..K-1 (use dataset.label_map to remap, or splits.test: null for unlabeled tests)"
        )
    count = max(targets) + 1
    if count < 2:
        raise DataError("dataset.label_field: found a single label 0; need at least two")
    missing = sorted(set(range(count)) - targets)
    if missing:  # {0, 5} would silently become six classes, four of them never seen
        found = ", ".join(str(t) for t in sorted(targets))
        raise DataError(
            f"dataset.label_field: integer labels must be the class ids 0..K-1, found {found} "
            f"(no {', '.join(map(str, missing[:5]))}); set dataset.label_map to name them"
        )
    return [str(i) for i in range(count)], {t: t for t in targets}


__all__ = ["Dataset", "encode_labels"]
