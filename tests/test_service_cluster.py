"""What docker-compose.yml starts, without Docker: `sweepctl serve` on PostgreSQL placing
trials on a Ray cluster it joins with --ray-address, a sweep submitted with
`sweepctl launch --server` running to the end on that cluster's workers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import ray
from ray.cluster_utils import Cluster

from sweepctl.storage import Store, SweepState, TrialState
from tests.conftest import REPO
from tests.service_process import running_server
from tests.test_service_controller import completed, launch_with_server, sweep_state
from tests.test_sweep_lifecycle import write_analytic_spec

pytest_plugins = ["tests.storage_backends"]


@pytest.fixture
def ray_head(monkeypatch: pytest.MonkeyPatch) -> Iterator[Cluster]:
    """A head node of its own, as compose's ray-head service; its workers inherit
    PYTHONPATH so they can import the test runner."""
    if ray.is_initialized():
        ray.shutdown()
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 2, "num_gpus": 0, "include_dashboard": False},
    )
    yield cluster
    cluster.shutdown()


def test_serve_on_postgresql_runs_a_sweep_on_a_ray_cluster(
    ray_head: Cluster, pg_url: str, tmp_path: Path
) -> None:
    spec = write_analytic_spec(tmp_path, "clustered")
    cluster = ("--backend", "ray", "--ray-address", ray_head.address)
    with running_server(tmp_path, pg_url, step_seconds=0.05, extra=cluster) as server:
        server_pid = server.process.pid
        cli = launch_with_server(spec, server.url, tmp_path / "home")
        assert cli.returncode == 0, cli.stderr
        server.wait_until(
            lambda: sweep_state(pg_url, "clustered") is SweepState.COMPLETED,
            timeout=180,
            what="the sweep on Ray",
        )
    with Store(pg_url) as store:
        trials = store.list_trials("clustered")
    assert len(completed(pg_url, "clustered")) == len(trials) == 11
    assert {t.state for t in trials} == {TrialState.COMPLETED}
    pids = {(t.resources or {}).get("pid") for t in trials}
    assert None not in pids and server_pid not in pids  # Ray workers ran them, not the server
