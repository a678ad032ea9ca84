"""The sweep commands as users type them: launch, list, status, watch, export, and the
errors a second launch or a spec without stages gets."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from sweepctl.cli import main
from sweepctl.spec.models import load_spec
from tests.test_strategies import ANALYTIC
from tests.test_sweep_lifecycle import write_analytic_spec

INLINE = ["--backend", "inline", "--runner", ANALYTIC]


@pytest.fixture
def finished_sweep(
    tmp_path: Path, home: Path, capsys: pytest.CaptureFixture[str]
) -> dict[str, Any]:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    spec = write_analytic_spec(tmp_path, "cli")
    assert main(["launch", str(spec), "--db", url, *INLINE]) == 0
    out = capsys.readouterr().out
    return {"url": url, "spec": spec, "out": out, "tmp": tmp_path}


def test_launch_prints_the_best_trial_and_writes_the_export(
    finished_sweep: dict[str, Any], home: Path
) -> None:
    out = finished_sweep["out"]
    assert "sweep cli: COMPLETED" in out and "OFAT ranking" in out
    exported = home / "exports" / "cli-best.yaml"
    assert f"best configuration written to {exported}" in out.replace("\n", "")
    spec = load_spec(exported)
    assert spec.name == "cli-best" and not spec.stages
    assert spec.training["learning_rate"] == pytest.approx(5.0e-5, rel=0.3)


def test_list_status_and_watch(
    finished_sweep: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    url = finished_sweep["url"]
    assert main(["list", "--db", url]) == 0
    listing = capsys.readouterr().out
    assert "cli" in listing and "COMPLETED" in listing
    assert main(["status", "cli", "--db", url]) == 0
    status = capsys.readouterr().out
    assert "screen" in status and "bayes" in status and "learning_rate" in status
    assert main(["watch", "cli", "--db", url, "--interval", "0.1"]) == 0
    assert "sweep cli: COMPLETED" in capsys.readouterr().out


def test_export_formats_and_trials_csv(
    finished_sweep: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    url, tmp = finished_sweep["url"], finished_sweep["tmp"]
    assert main(["export", "cli", "--db", url, "--format", "json"]) == 0
    best = json.loads(capsys.readouterr().out)
    assert best["sweep"] == "cli" and set(best["params"]) == {
        "learning_rate",
        "weight_decay",
        "warmup_steps",
    }
    assert main(["export", "cli", "--db", url, "--format", "hf-args", "--top", "2"]) == 0
    args = json.loads(capsys.readouterr().out)
    assert len(args) == 2 and "learning_rate" in args[0]
    out, table = tmp / "best.yaml", tmp / "trials.csv"
    assert main(["export", "cli", "--db", url, "-o", str(out), "--trials-csv", str(table)]) == 0
    assert yaml.safe_load(out.read_text())["name"] == "cli-best"
    rows = list(csv.DictReader(table.open()))
    assert len(rows) == 11 and {r["state"] for r in rows} == {"COMPLETED"}


def test_second_launch_is_refused_unless_asked_to_resume(
    finished_sweep: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    url, spec = finished_sweep["url"], str(finished_sweep["spec"])
    assert main(["launch", spec, "--db", url, *INLINE]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["launch", spec, "--db", url, "--if-exists", "resume", *INLINE]) == 0
    assert "already COMPLETED" in capsys.readouterr().out


def test_launch_needs_stages(
    tiny_spec: dict[str, Any], write_spec: Any, sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["launch", str(write_spec(tiny_spec)), "--db", sqlite_url]) == 2
    assert "stages: launch needs at least one stage" in capsys.readouterr().err
