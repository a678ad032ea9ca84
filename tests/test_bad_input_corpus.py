"""Every malformed spec or data file in tests/fuzz_corpus.py ends `validate` and `launch`
with exit 2, exactly one `sweepctl: error:` line that names the field or file, no
traceback, and no row in the store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from sweepctl.cli import main
from sweepctl.storage import Store
from tests.conftest import write_csv
from tests.fuzz_corpus import CORPUS, LABELED, LR, Case


@pytest.fixture
def base_spec(tiny_spec: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    """A valid, launchable sweep spec: OFAT over the learning rate of the tiny BERT."""
    files = {
        "train": write_csv(tmp_path / "base" / "train.csv", ["text", "label"], LABELED * 4),
        "validation": write_csv(tmp_path / "base" / "val.csv", ["text", "label"], LABELED),
    }
    dataset = {**tiny_spec["dataset"], "data_files": {k: str(v) for k, v in files.items()}}
    return {
        **tiny_spec,
        "dataset": dataset,
        "search_space": {"learning_rate": LR},
        "stages": [{"name": "screen", "strategy": "ofat"}],
    }


def write_case(case: Case, base: dict[str, Any], directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "spec.yaml"
    if case.raw is not None:
        path.write_bytes(case.raw)
        return path
    spec = case.change(base) if case.change else dict(base)
    for name, text in case.files.items():
        (directory / name).write_text(text)
        role = "train" if name.startswith("train") else "validation"
        spec = {**spec, "dataset": {**spec["dataset"]}}
        spec["dataset"]["data_files"] = {**spec["dataset"]["data_files"], role: name}
    path.write_text(yaml.safe_dump(spec, sort_keys=False, allow_unicode=True))
    return path


def the_one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("sweepctl: error: "), captured.err
    return lines[0]


def stored_rows(db: Path) -> int:
    if not db.exists():
        return 0
    with Store(f"sqlite:///{db}") as store:
        return sum(store.count_rows().values())


def test_the_corpus_holds_at_least_sixty_distinct_cases() -> None:
    assert len(CORPUS) >= 60
    assert len({case.name for case in CORPUS}) == len(CORPUS)


def test_the_unchanged_base_spec_is_valid(
    base_spec: dict[str, Any], tmp_path: Path, home: Path
) -> None:
    """So every refusal below is the case's doing."""
    path = write_case(Case("valid", ""), base_spec, tmp_path / "valid")
    assert main(["validate", str(path)]) == 0


@pytest.mark.parametrize("case", CORPUS, ids=[case.name for case in CORPUS])
def test_a_malformed_input_is_one_line_exit_2_and_writes_nothing(
    case: Case,
    base_spec: dict[str, Any],
    tmp_path: Path,
    home: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = write_case(case, base_spec, tmp_path / "case")
    capsys.readouterr()
    assert main(["validate", str(path)]) == 2
    line = the_one_error_line(capsys)
    assert case.expect in line, line

    db = tmp_path / "store.db"
    assert main(["launch", str(path), "--db", str(db), "--backend", "inline"]) == 2
    assert case.expect in the_one_error_line(capsys)
    assert stored_rows(db) == 0


SUBPROCESS_CASES = ["delimiter 123", "binary garbage csv", "labels 0 and 5", "alias bomb"]


@pytest.mark.parametrize("name", SUBPROCESS_CASES)
def test_a_real_validate_process_prints_exactly_one_line(
    name: str, base_spec: dict[str, Any], tmp_path: Path, home: Path
) -> None:
    """In a real process nothing else reaches stderr: no library log lines, no bars."""
    import os
    import subprocess
    import sys

    from tests.conftest import REPO

    case = next(c for c in CORPUS if c.name == name)
    path = write_case(case, base_spec, tmp_path / "case")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-m", "sweepctl", "validate", str(path)],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("sweepctl: error: "), done.stderr
    assert case.expect in lines[0]
