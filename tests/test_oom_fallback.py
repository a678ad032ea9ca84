"""Out of memory: the configuration is retried with half the batch and twice the
accumulation (spec.batch), through the documented fault hook (workers.faults) and real
Trainer runs of the tiny BERT."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml

from sweepctl.cli import main
from sweepctl.orchestrator.outcomes import BATCH_HALVINGS_ATTR
from sweepctl.spec.batch import Batch, after_halvings, possible_halvings
from sweepctl.storage import Store, TrialState
from sweepctl.workers.faults import OOM_AT_STEP
from tests.fault_helpers import finish, start_sweepctl, tiny_one_point_grid, worker_pid


def test_halving_keeps_the_effective_batch_all_the_way_down_to_one() -> None:
    batch = Batch.of({"per_device_train_batch_size": 16, "per_device_eval_batch_size": 64})
    seen = []
    while batch is not None:
        seen.append((batch.train, batch.accumulation, batch.eval))
        batch = batch.halved()
    assert seen == [(16, 1, 64), (8, 2, 32), (4, 4, 16), (2, 8, 8), (1, 16, 4)]


def test_a_batch_that_is_not_a_power_of_two_goes_to_its_largest_divisor() -> None:
    training = {"per_device_train_batch_size": 12, "gradient_accumulation_steps": 2}
    shrunk = [after_halvings(training, n) for n in range(4)]
    assert [(b.train, b.accumulation) for b in shrunk] == [(12, 2), (6, 4), (3, 8), (1, 24)]
    assert {b.effective for b in shrunk} == {24}
    assert possible_halvings(training) == 3
    assert after_halvings(training, 9) == shrunk[-1]  # never below one


def test_the_hf_default_batch_is_the_starting_point_when_the_spec_sets_none() -> None:
    assert Batch.of({}).to_dict() == {"train": 8, "accumulation": 1, "eval": 8, "effective": 8}
    assert possible_halvings({"per_device_train_batch_size": 1}) == 0


def _oom_spec(tiny_spec: dict[str, Any], name: str, **resources: Any) -> dict[str, Any]:
    batch = {"per_device_train_batch_size": 8, "gradient_accumulation_steps": 1}
    resources = {"max_concurrent_trials": 1, **resources}
    return tiny_one_point_grid(tiny_spec, name, batch, resources=resources)


def _launch_inline(tmp_path: Path, spec: dict[str, Any]) -> tuple[int, str]:
    path = tmp_path / f"{spec['name']}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    url = f"sqlite:///{tmp_path / 'store.db'}"
    return main(["launch", str(path), "--db", url, "--backend", "inline"]), url


def test_an_oom_is_retried_with_half_the_batch_twice_the_accumulation_and_the_same_params(
    tmp_path: Path, home: Path, tiny_spec: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(OOM_AT_STEP, "2")
    code, url = _launch_inline(tmp_path, _oom_spec(tiny_spec, "oom"))
    assert code == 0
    with Store(url) as store:
        first, second = store.list_trials("oom")
        summary = store.sweep_row("oom").stages[0].summary or {}
    assert (first.state, first.failure_kind, first.attempt) == (TrialState.FAILED, "oom", 1)
    assert "injected by SWEEPCTL_FAULT_OOM_AT_STEP=2" in (first.error or "")
    assert (second.state, second.attempt, second.retry_of) == (TrialState.COMPLETED, 2, first.id)
    assert second.params == first.params == {"learning_rate": 1e-3}
    ran = second.config["training"]
    assert (ran["per_device_train_batch_size"], ran["gradient_accumulation_steps"]) == (4, 2)
    assert ran["per_device_eval_batch_size"] == 16
    assert second.resources["batch"] == {"train": 4, "accumulation": 2, "eval": 16, "effective": 8}
    assert second.config["oom_fallback"]["batch_before"]["train"] == 8
    assert summary.get("given_up") == 0 and summary.get("retried") == 1
    study = optuna.load_study(study_name="oom", storage=url)
    retry = next(t for t in study.trials if t.number == second.optuna_trial_number)
    assert retry.user_attrs[BATCH_HALVINGS_ATTR] == 1


def test_with_the_fallback_off_the_retry_keeps_the_spec_s_batch(
    tmp_path: Path, home: Path, tiny_spec: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(OOM_AT_STEP, "2")
    code, url = _launch_inline(tmp_path, _oom_spec(tiny_spec, "nofallback", oom_fallback=False))
    assert code == 0
    with Store(url) as store:
        first, second = store.list_trials("nofallback")
    assert (first.failure_kind, second.state) == ("oom", TrialState.COMPLETED)
    assert second.resources["batch"]["train"] == 8 and "oom_fallback" not in second.config


def test_an_oom_at_a_batch_of_one_costs_an_attempt_like_any_retryable_failure(
    tmp_path: Path, home: Path, tiny_spec: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(OOM_AT_STEP, "1")
    spec = _oom_spec(tiny_spec, "one")
    spec["training"] |= {"per_device_train_batch_size": 1, "num_train_epochs": 1}
    spec["retries"] = {"max_attempts": 1}
    code, url = _launch_inline(tmp_path, spec)
    assert code != 0  # its only point was given up: the sweep trained nothing
    with Store(url) as store:
        (only,) = store.list_trials("one")
        summary = store.sweep_row("one").stages[0].summary or {}
    assert (only.state, only.failure_kind) == (TrialState.FAILED, "oom")
    assert summary.get("given_up") == 1


def test_on_ray_the_oom_retry_trains_in_a_new_worker_process(
    tmp_path: Path, home: Path, tiny_spec: dict[str, Any]
) -> None:
    """The variable reaches the Ray workers the sweep starts (backends), and the retry
    runs in another process than the one that ran out of memory."""
    path = tmp_path / "rayoom.yaml"
    path.write_text(yaml.safe_dump(_oom_spec(tiny_spec, "rayoom"), sort_keys=False))
    url = f"sqlite:///{tmp_path / 'store.db'}"
    process = start_sweepctl(["launch", str(path), "--db", url], home, **{OOM_AT_STEP: "2"})
    code, _, err = finish(process, timeout=300)
    assert code == 0, err
    with Store(url) as store:
        first, second = store.list_trials("rayoom")
    assert (first.failure_kind, second.state) == ("oom", TrialState.COMPLETED)
    assert second.resources["batch"]["accumulation"] == 2
    assert worker_pid(first) != worker_pid(second)


def test_a_packed_trial_out_of_memory_is_retried_alone_on_a_device_before_halving(
    tmp_path: Path, home: Path, tiny_spec: dict[str, Any]
) -> None:
    """Half a (fake) GPU per trial: the OOM's first answer is a device of its own, with
    the spec's batch; only a second OOM would halve it."""
    from ray.cluster_utils import Cluster

    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 4, "num_gpus": 1, "include_dashboard": False},
    )
    try:
        spec = _oom_spec(tiny_spec, "packedoom", gpus_per_trial=0.5)
        path = tmp_path / "packedoom.yaml"
        path.write_text(yaml.safe_dump(spec, sort_keys=False))
        url = f"sqlite:///{tmp_path / 'store.db'}"
        command = ["launch", str(path), "--db", url, "--ray-address", cluster.address]
        code, _, err = finish(start_sweepctl(command, home, **{OOM_AT_STEP: "2"}), timeout=300)
    finally:
        cluster.shutdown()
    assert code == 0, err
    with Store(url) as store:
        first, second = store.list_trials("packedoom")
    assert (first.failure_kind, second.state, second.attempt) == ("oom", TrialState.COMPLETED, 2)
    assert second.config["placement"]["gpus_per_trial"] == 1.0
    assert second.resources["ray_resources"]["GPU"] == 1.0
    assert second.resources["batch"]["train"] == 8 and "oom_fallback" not in second.config
