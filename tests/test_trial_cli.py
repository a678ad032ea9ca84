"""End-to-end trials through the real CLI on a tiny BERT: what users run, what gets stored."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sweepctl.cli import main
from sweepctl.storage import Store, TrialState
from tests.wandb_log import run_contents

pytest_plugins = ["tests.storage_backends"]


def run_cli(*args: str) -> int:
    return main(list(args))


@pytest.fixture
def completed_trial(
    write_spec: Any, home: Path, sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> Callable[..., dict[str, Any]]:
    """Runs `sweepctl trial --json` on a spec dict and returns the stored record it prints."""

    def run(spec: dict[str, Any], *overrides: str, db: str = sqlite_url) -> dict[str, Any]:
        sets = [arg for item in overrides for arg in ("--set", item)]
        argv = ["trial", str(write_spec(spec)), "--db", db, "--json", "--no-progress", *sets]
        assert run_cli(*argv) == 0
        return json.loads(capsys.readouterr().out)

    return run


def test_trial_runs_stores_and_shows(
    tiny_spec: dict[str, Any],
    completed_trial: Callable[..., dict[str, Any]],
    sqlite_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    record = completed_trial(tiny_spec)
    assert record["state"] == "COMPLETED"
    assert [e["epoch"] for e in record["evaluations"]] == [1.0, 2.0]
    for evaluation in record["evaluations"]:
        for key in (
            "training_loss",
            "eval_loss",
            "accuracy",
            "f1",
            "precision",
            "recall",
            "learning_rate",
            "grad_norm",
        ):
            assert evaluation[key] is not None, key
    assert record["objective"] == record["metrics"]["f1"]
    assert record["metrics"]["labels"] == ["neg", "pos"]
    assert sum(map(sum, record["metrics"]["confusion_matrix"])) == 16
    checkpoint = Path(next(a["uri"] for a in record["artifacts"] if a["kind"] == "checkpoint"))
    assert (checkpoint / "config.json").is_file()
    assert not (checkpoint.parent / "checkpoints").exists()  # only the best one is kept
    assert record["resources"]["parameters"] > 0
    assert record["resources"]["checkpoint_bytes"] > 0

    assert run_cli("show", str(record["id"]), "--db", sqlite_url) == 0
    shown = capsys.readouterr().out
    assert "COMPLETED" in shown and "Validation Loss" in shown


def test_nan_loss_fails_the_trial_with_its_reason(
    tiny_spec: dict[str, Any],
    write_spec: Any,
    home: Path,
    sqlite_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    spec_path = write_spec(tiny_spec)
    code = run_cli(
        "trial",
        str(spec_path),
        "--db",
        sqlite_url,
        "--no-progress",
        "--set",
        "learning_rate=1e30",
        "--set",
        "max_grad_norm=0",
    )
    assert code == 1
    assert "training loss became nan" in capsys.readouterr().err
    store = Store(sqlite_url)
    (trial,) = store.list_trials("tiny")
    assert trial.state is TrialState.FAILED
    assert trial.error.startswith("training loss became nan")
    store.close()


def spec_with(tiny_spec: dict[str, Any], **changes: Any) -> dict[str, Any]:
    spec = copy.deepcopy(tiny_spec)
    for dotted, value in changes.items():
        *parents, last = dotted.split("__")
        node = spec
        for part in parents:
            node = node[part]
        node[last] = value
    return spec


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"dataset__data_files__train": "/nonexistent/train.csv"},
            "dataset.data_files.train: file not found: /nonexistent/train.csv",
        ),
        (
            {"dataset__text_fields": ["sentense"]},
            "dataset.text_fields: column 'sentense' not in the train split (columns: text, label)",
        ),
        (
            {"dataset__label_map": {"pos": 1}},
            "dataset.label_map: label 'neg' in the train split is not a key of label_map "
            "(keys: pos)",
        ),
        ({"model": "no-such-org/no-such-model"}, "model: cannot load 'no-such-org/no-such-model'"),
        ({"model": "./missing-model-dir"}, "model: directory not found: ./missing-model-dir"),
        (
            {"model": "package:not_a_real_package"},
            "model: package 'not_a_real_package' is not installed",
        ),
        (
            {"model_args": {"hiden_dropout_prob": 0.1}},
            "model_args.hiden_dropout_prob: not a setting of the bert model config",
        ),
        ({"training__learnin_rate": 0.1}, "training.learnin_rate: unknown key"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_nothing_stored(
    tiny_spec: dict[str, Any],
    write_spec: Any,
    home: Path,
    sqlite_url: str,
    capsys: pytest.CaptureFixture[str],
    changes: dict[str, Any],
    message: str,
) -> None:
    spec_path = write_spec(spec_with(tiny_spec, **changes))
    assert run_cli("trial", str(spec_path), "--db", sqlite_url, "--no-progress") == 2
    err_lines = [
        line for line in capsys.readouterr().err.splitlines() if line.startswith("sweepctl:")
    ]
    assert len(err_lines) == 1
    assert message in err_lines[0]
    store = Store(sqlite_url)
    assert set(store.count_rows().values()) == {0}
    store.close()


def test_validate_command_exit_codes(
    tiny_spec: dict[str, Any], write_spec: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli("validate", str(write_spec(tiny_spec))) == 0
    assert "ok" in capsys.readouterr().out
    broken = spec_with(tiny_spec, training__num_train_epoch=2)
    assert run_cli("validate", str(write_spec(broken, "broken.yaml"))) == 2
    assert "training.num_train_epoch: unknown key" in capsys.readouterr().err


def test_unreachable_database_is_a_usage_error(
    tiny_spec: dict[str, Any], write_spec: Any, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = "postgresql://sweep:hunter2@127.0.0.1:1/none"
    assert run_cli("trial", str(write_spec(tiny_spec)), "--db", url, "--no-progress") == 2
    err = capsys.readouterr().err
    assert "127.0.0.1:1" in err and "hunter2" not in err


def test_hyperparameters_reach_trainer_model_and_tokenizer(
    tiny_spec: dict[str, Any], completed_trial: Callable[..., dict[str, Any]], home: Path
) -> None:
    spec = spec_with(tiny_spec, training__warmup_steps=3, training__lr_scheduler_type="cosine")
    record = completed_trial(spec, "hidden_dropout_prob=0.25", "max_length=8", "weight_decay=0.05")
    assert record["params"] == {"hidden_dropout_prob": 0.25, "max_length": 8, "weight_decay": 0.05}
    training = record["config"]["training"]
    assert training["warmup_steps"] == 3 and training["lr_scheduler_type"] == "cosine"
    assert training["weight_decay"] == 0.05
    checkpoint = Path(next(a["uri"] for a in record["artifacts"] if a["kind"] == "checkpoint"))
    saved_config = json.loads((checkpoint / "config.json").read_text())
    assert saved_config["hidden_dropout_prob"] == 0.25
    assert saved_config["id2label"] == {"0": "neg", "1": "pos"}
    from datasets import load_from_disk

    (cache,) = (home / "cache" / "tokenized").iterdir()
    lengths = {len(ids) for ids in load_from_disk(str(cache))["train"]["input_ids"]}
    assert max(lengths) == 8  # truncated to max_length and never padded to it
    assert min(lengths) < 8


def test_early_stopping_and_tokenization_cache_reuse(
    tiny_spec: dict[str, Any], completed_trial: Callable[..., dict[str, Any]]
) -> None:
    spec = spec_with(
        tiny_spec,
        training__num_train_epochs=8,
        training__early_stopping_patience=1,
        training__learning_rate=1.0e-7,
        objective={"metric": "loss"},
    )
    first, second = completed_trial(spec), completed_trial(spec)
    assert first["resources"]["tokenization_cache_hit"] is False
    assert second["resources"]["tokenization_cache_hit"] is True
    # the loss barely moves at lr 1e-7, so patience 1 stops the run well before epoch 8
    assert len(first["evaluations"]) < 8
    assert first["metrics"]["eval_loss"] == min(e["eval_loss"] for e in first["evaluations"])
    # same seed, same cached data: the second trial repeats the first exactly
    assert [e["eval_loss"] for e in second["evaluations"]] == [
        e["eval_loss"] for e in first["evaluations"]
    ]


def test_wandb_offline_run_files(
    tiny_spec: dict[str, Any],
    write_spec: Any,
    home: Path,
    sqlite_url: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    secret = "wandb-secret-key-0123456789abcdef0123456789"
    monkeypatch.setenv("WANDB_API_KEY", secret)
    spec = spec_with(tiny_spec, tracking={"wandb": {"mode": "offline", "project": "tests"}})
    assert (
        run_cli("trial", str(write_spec(spec)), "--db", sqlite_url, "--json", "--no-progress") == 0
    )
    captured = capsys.readouterr()
    record = json.loads(captured.out)
    run_dir = Path(next(a["uri"] for a in record["artifacts"] if a["kind"] == "wandb_run"))
    assert run_dir.name.startswith("offline-run-")
    (log,) = run_dir.glob("run-*.wandb")  # the file `wandb sync` uploads
    contents = run_contents(log)
    assert contents["run"] == {
        "group": "tiny",
        "name": f"tiny-trial-{record['id']}",
        "project": "tests",
        "job_type": "trial",
    }
    assert contents["config"]["learning_rate"] == pytest.approx(1e-3)
    assert contents["config"]["trial_id"] == record["id"]
    assert [row["epoch"] for row in contents["history"]] == [1, 2]
    assert contents["history"][0]["eval/f1"] == pytest.approx(record["evaluations"][0]["f1"])
    assert contents["summary"]["objective"] == pytest.approx(record["objective"])
    assert contents["summary"]["state"] == "COMPLETED"
    assert contents["summary"]["resources/parameters"] == record["resources"]["parameters"]
    assert secret.encode() not in log.read_bytes()
    database = Path(sqlite_url.removeprefix("sqlite:///")).read_bytes()
    assert secret.encode() not in database
    assert secret not in captured.out + captured.err


def test_trial_and_show_against_postgresql(
    tiny_spec: dict[str, Any],
    completed_trial: Callable[..., dict[str, Any]],
    pg_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The team setup: the same CLI with a PostgreSQL URL (psycopg 3)."""
    url = pg_url.replace("postgresql+psycopg://", "postgresql://")
    stored = completed_trial(tiny_spec, db=url)
    assert run_cli("show", str(stored["id"]), "--db", url, "--json") == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown == stored
    assert shown["state"] == "COMPLETED" and len(shown["evaluations"]) == 2


def test_show_unknown_trial_is_a_usage_error(
    home: Path, sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli("show", "999", "--db", sqlite_url) == 2  # no database there at all
    assert "no sweepctl database at" in capsys.readouterr().err.strip()
    Store(sqlite_url).close()
    assert run_cli("show", "999", "--db", sqlite_url) == 2
    assert capsys.readouterr().err.strip().startswith("sweepctl: error: trial 999 not found")
