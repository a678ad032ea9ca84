"""From the spec's `dataset:` block to tokenized train/validation/test splits.

Tokenization is the one cost every trial of a sweep would otherwise pay again, so its
output is cached on disk under a key made of everything that changes it (file contents,
columns, labels, subsets, seed, tokenizer, max_length). Later trials load the cache and
never touch the raw files. Sequences are truncated but never padded here: the collator pads
each batch to its own longest row, which is where most of the speed-up over
`padding="max_length"` comes from.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datasets import ClassLabel, Dataset, DatasetDict, concatenate_datasets, load_from_disk

from sweepctl.spec.errors import DataError
from sweepctl.spec.models import FILE_BUILDERS, DatasetSpec, SweepSpec
from sweepctl.workers.labels import encode_labels

LOG = logging.getLogger("sweepctl.data")
CACHE_FORMAT_VERSION = 1
MODEL_INPUT_COLUMNS = ("input_ids", "attention_mask", "token_type_ids", "labels")


@dataclass(frozen=True)
class PreparedData:
    splits: DatasetDict
    label_names: list[str]
    cache_dir: Path
    cache_hit: bool

    @property
    def test(self) -> Dataset | None:
        return self.splits.get("test")


def check_data_files(spec: DatasetSpec) -> None:
    """Fail fast, before anything is loaded or stored, on a data file that is not there."""
    if spec.path not in FILE_BUILDERS:
        return
    for key, files in {**(spec.data_files or {}), **(spec.class_files or {})}.items():
        section = "data_files" if spec.data_files else "class_files"
        for name in [files] if isinstance(files, str) else files:
            if "://" in name:
                continue
            if not Path(name).is_file():
                raise DataError(f"dataset.{section}.{key}: file not found: {name}")
            if Path(name).stat().st_size == 0:
                raise DataError(f"dataset.{section}.{key}: empty file (0 bytes): {name}")
            if spec.path == "csv" and _lines_with_text(Path(name), 2) < 2:
                raise DataError(f"dataset.{section}.{key}: has no rows (only a header?): {name}")


def _lines_with_text(path: Path, enough: int) -> int:
    """Non-blank lines, counted up to `enough` (a CSV needs a header and one row)."""
    count = 0
    with path.open("rb") as handle:
        for line in handle:
            count += bool(line.strip())
            if count >= enough:
                break
    return count


def prepare_data(spec: DatasetSpec, tokenizer: Any, seed: int, cache_root: Path) -> PreparedData:
    check_data_files(spec)
    key = cache_key(spec, tokenizer, seed)
    cache_dir = cache_root / key
    if (cache_dir / "meta.json").is_file():
        meta = json.loads((cache_dir / "meta.json").read_text())
        return PreparedData(load_from_disk(str(cache_dir)), meta["label_names"], cache_dir, True)
    splits, label_names = build_splits(spec, seed)
    tokenized = tokenize(splits, spec, tokenizer)
    _save_atomically(tokenized, label_names, cache_dir)
    return PreparedData(load_from_disk(str(cache_dir)), label_names, cache_dir, False)


def build_splits(spec: DatasetSpec, seed: int) -> tuple[DatasetDict, list[str]]:
    """Raw data -> train/validation/(test) with an integer `labels` ClassLabel column."""
    raw = load_raw(spec)
    roles = _select_roles(raw, spec)
    _check_columns(roles, spec)
    _check_rows(roles)
    roles, label_names = encode_labels(roles, spec)
    roles = _carve_missing_splits(roles, spec, seed)
    _check_train_classes(roles, label_names)
    return _subsample(roles, spec, seed), label_names


def dataset_seed(spec: SweepSpec) -> int:
    """The seed subsets and carved splits use: dataset.seed, else training's seed."""
    return spec.dataset.seed if spec.dataset.seed is not None else spec.seed


def check_dataset(spec: DatasetSpec, seed: int) -> None:
    """Everything a trial's data preparation checks, without the tokenizer: what
    `validate`, `launch` and `resume` run before they write a row."""
    import datasets

    if spec.path not in FILE_BUILDERS:
        return  # hub datasets are checked by the trial that downloads them
    check_data_files(spec)
    datasets.disable_progress_bars()  # the answer is one line, not a screen of bars
    try:
        build_splits(spec, seed)
    finally:
        datasets.enable_progress_bars()


def _check_rows(roles: DatasetDict) -> None:
    for role, split in roles.items():
        if len(split) == 0:
            raise DataError(f"dataset: the {role} split has no rows (only a header?)")


def _check_train_classes(roles: DatasetDict, label_names: list[str]) -> None:
    present = set(roles["train"].unique("labels"))
    if len(present) < 2:
        names = [label_names[i] for i in sorted(present)]
        raise DataError(
            f"dataset: the train split has a single class {names}; a classifier needs two"
        )


def load_raw(spec: DatasetSpec) -> DatasetDict:
    from datasets import load_dataset

    try:
        with _builder_logs_silenced():
            return _load(spec, load_dataset)
    except (FileNotFoundError, ValueError, OSError) as exc:
        raise DataError(f"dataset: cannot load '{spec.path}': {_first_line(exc)}") from None
    except Exception as exc:  # pandas/pyarrow parse errors have no common base class
        raise DataError(f"dataset: cannot parse '{spec.path}' files: {_first_line(exc)}") from None


@contextlib.contextmanager
def _builder_logs_silenced() -> Iterator[None]:
    """The builders log a parse failure (with the file's lines) before raising it; the
    DataError made from the exception is the one line users get instead."""
    from datasets.utils import logging as ds_logging

    verbosity = ds_logging.get_verbosity()
    ds_logging.set_verbosity(ds_logging.CRITICAL)
    try:
        yield
    finally:
        ds_logging.set_verbosity(verbosity)


def _load(spec: DatasetSpec, load_dataset: Any) -> DatasetDict:
    if spec.class_files:
        return DatasetDict({spec.splits.train: _load_class_files(spec, load_dataset)})
    loaded = load_dataset(spec.path, spec.name, data_files=spec.data_files, **spec.builder_kwargs)
    return loaded if isinstance(loaded, DatasetDict) else DatasetDict({"train": loaded})


def _load_class_files(spec: DatasetSpec, load_dataset: Any) -> Dataset:
    """One file (or list of files) per class; the label is the class_files key."""
    parts = []
    for label, files in (spec.class_files or {}).items():
        part = load_dataset(spec.path, data_files={"train": files}, **spec.builder_kwargs)
        part = part["train"]
        if spec.label_field in part.column_names:
            part = part.remove_columns(spec.label_field)
        parts.append(part.add_column(spec.label_field, [label] * len(part)))
    return concatenate_datasets(parts)


def _select_roles(raw: DatasetDict, spec: DatasetSpec) -> DatasetDict:
    roles: dict[str, Dataset] = {}
    for role, split in spec.splits.model_dump().items():
        if split is None:
            continue
        if split in raw:
            roles[role] = raw[split]
        elif role == "train":
            raise DataError(
                f"dataset.splits.train: no split '{split}' in the data (splits: {', '.join(raw)})"
            )
    return DatasetDict(roles)


def _check_columns(roles: DatasetDict, spec: DatasetSpec) -> None:
    for role, split in roles.items():
        needed = [("text_fields", c) for c in spec.text_fields] + [
            ("label_field", spec.label_field)
        ]
        for key, column in needed:
            if column not in split.column_names:
                raise DataError(
                    f"dataset.{key}: column '{column}' not in the {role} split "
                    f"(columns: {', '.join(split.column_names)})"
                )


def _carve_missing_splits(roles: DatasetDict, spec: DatasetSpec, seed: int) -> DatasetDict:
    """Stratified carving keeps rare classes (CEFR C2) present in every split."""
    roles = DatasetDict(roles)
    if "test" not in roles and spec.test_split:
        roles["train"], roles["test"] = _stratified_split(roles["train"], spec.test_split, seed)
    if "validation" not in roles:
        roles["train"], roles["validation"] = _stratified_split(
            roles["train"], spec.validation_split, seed
        )
    return roles


def _stratified_split(data: Dataset, fraction: float, seed: int) -> tuple[Dataset, Dataset]:
    try:
        parts = data.train_test_split(test_size=fraction, seed=seed, stratify_by_column="labels")
    except ValueError as exc:  # fewer rows than classes, or a class with a single row
        LOG.warning(
            "split of %.0f%% not stratified (%s): rare classes may be missing", fraction * 100, exc
        )
        parts = data.train_test_split(test_size=fraction, seed=seed)
    return parts["train"], parts["test"]


def _subsample(roles: DatasetDict, spec: DatasetSpec, seed: int) -> DatasetDict:
    sizes = {"train": spec.train_size, "validation": spec.eval_size, "test": spec.test_size}
    out = {}
    for role, split in roles.items():
        size = sizes.get(role)
        if size is not None and size < len(split):
            split = split.shuffle(seed=seed).select(range(size))
        out[role] = split
    return DatasetDict(out)


def tokenize(splits: DatasetDict, spec: DatasetSpec, tokenizer: Any) -> DatasetDict:
    fields = spec.text_fields

    def encode(batch: dict[str, list[Any]]) -> dict[str, Any]:
        texts = [[t if t is not None else "" for t in batch[f]] for f in fields]
        return tokenizer(*texts, truncation=True, max_length=spec.max_length)

    out = {}
    for role, split in splits.items():
        tokenized = split.map(encode, batched=True, desc=f"tokenizing {role}")
        drop = [c for c in tokenized.column_names if c not in MODEL_INPUT_COLUMNS]
        out[role] = tokenized.remove_columns(drop)
    return DatasetDict(out)


def cache_key(spec: DatasetSpec, tokenizer: Any, seed: int) -> str:
    identity = {
        "version": CACHE_FORMAT_VERSION,
        "dataset": spec.model_dump(mode="json"),
        "files": _file_fingerprints(spec),
        "seed": seed,
        "tokenizer": _tokenizer_fingerprint(tokenizer),
    }
    blob = json.dumps(identity, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:24]


def _file_fingerprints(spec: DatasetSpec) -> dict[str, str]:
    if spec.path not in FILE_BUILDERS:
        return {}
    fingerprints = {}
    for files in {**(spec.data_files or {}), **(spec.class_files or {})}.values():
        for name in [files] if isinstance(files, str) else files:
            fingerprints[name] = _sha256_file(Path(name))
    return fingerprints


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _tokenizer_fingerprint(tokenizer: Any) -> str:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    body = backend.to_str() if backend is not None else repr(sorted(tokenizer.get_vocab().items()))
    return hashlib.sha256(f"{type(tokenizer).__name__}|{body}".encode()).hexdigest()


def _save_atomically(splits: DatasetDict, label_names: list[str], cache_dir: Path) -> None:
    """Write to a temporary sibling and rename, so concurrent trials never read half a cache."""
    cache_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache_dir.parent / f".{cache_dir.name}.{uuid.uuid4().hex[:8]}"
    splits.save_to_disk(str(tmp))
    meta = {"label_names": label_names, "rows": {k: len(v) for k, v in splits.items()}}
    (tmp / "meta.json").write_text(json.dumps(meta))
    try:
        os.rename(tmp, cache_dir)
    except OSError:  # another trial finished the same cache first; theirs is identical
        shutil.rmtree(tmp, ignore_errors=True)


def _first_line(exc: BaseException) -> str:
    """datasets wraps parse errors in "An error occurred while generating the dataset":
    the innermost cause says what is wrong with the file."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


__all__ = ["ClassLabel", "PreparedData", "check_data_files", "check_dataset", "prepare_data"]
