"""bench/gpu_check.py --cpu-smoke, as CI runs it: every part of the GPU check on a Ray
node with one fake GPU, the tiny BERT, and the OOM raised through the documented hook."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import REPO


def test_the_gpu_check_s_cpu_smoke_runs_every_part_and_prints_one_json_line() -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    env.pop("RAY_ADDRESS", None)
    done = subprocess.run(
        [sys.executable, "bench/gpu_check.py", "--cpu-smoke"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, done.stdout[-2000:]
    report = json.loads(lines[0])
    assert report["mode"] == "cpu-smoke"
    tries = [
        (t["state"], t["failure_kind"], t["batch"], t["accumulation"])
        for t in report["oom"]["tries"]
    ]
    assert tries == [("FAILED", "oom", 16, 1), ("COMPLETED", None, 8, 2)]
    packing = {row["per_gpu"]: row for row in report["packing"]}
    assert sorted(packing) == [1, 2, 4]
    for per_gpu, row in packing.items():
        assert row["completed"] == per_gpu and row["samples_per_s"] > 0
        assert [r["GPU"] for r in row["ray_resources"]] == [1.0 / per_gpu] * per_gpu
