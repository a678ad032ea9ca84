"""Dashboard at scale: one sweep of 10,000 trials with 5 evaluations each, and the time
each request of the sweep page takes through a real uvicorn server.

Why: a dashboard in this field slowed down quadratically at this size; the target is under
1 s per request. The store is built with the real Store API for the sweep, its stages and
the OFAT summary, and with SQLAlchemy bulk inserts into the real sweepctl tables for the
trials and evaluations (the per-trial API costs 8 transactions a trial: minutes for
nothing the dashboard measures). The sweep's Optuna study gets the same 10,000 trials
through `study.add_trials`, so the importance endpoint has a real study to read.

    python bench/dashboard_scale.py --json bench/results/dashboard_scale.json

Each endpoint is called once right after the server started, in the order the sweep page
makes them (cold: first overview in the process, no Optuna storage yet, the importance
computation running in the background), then the script waits until importance is ready,
then calls each `--calls` more times (warm: a page left open). The table shows the cold
time and the median and max of the warm calls; "<1 s" means every call was under 1 s.
The server runs in a thread of this process (uvicorn, HTTP over loopback with httpx).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import socket
import statistics
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # `python bench/dashboard_scale.py` from the repo root
    sys.path.insert(0, str(REPO_ROOT))

NAME = "scale"
SPACE = {
    "learning_rate": {"type": "float", "low": 1e-5, "high": 5e-5, "log": True},
    "weight_decay": {"type": "float", "low": 0.0, "high": 0.1},
    "warmup_steps": {"type": "int", "low": 0, "high": 500},
}
TARGET_S = 1.0


def spec_dict() -> dict[str, Any]:
    return {
        "name": NAME,
        "model": "analytic",
        "dataset": {"path": "analytic", "text_fields": ["x"]},
        "training": {"learning_rate": 2e-5, "weight_decay": 0.01, "warmup_steps": 100},
        "objective": {"metric": "loss"},
        "search_space": {k: {**v, "ofat": [v["low"], v["high"]]} for k, v in SPACE.items()},
        "stages": [
            {"name": "screen", "strategy": "ofat"},
            {"name": "bayes", "strategy": "bayes", "n_trials": 9993, "warm_start": True},
        ],
        "tracking": {"wandb": {"mode": "disabled"}},
    }


def loss(params: dict[str, Any], rng: random.Random) -> float:
    value = 1.0 + 3.0 * abs(math.log10(params["learning_rate"]) + 4.3)
    value += 10.0 * abs(params["weight_decay"] - 0.05) + 0.001 * params["warmup_steps"] / 100
    return value + rng.gauss(0, 0.05)


def sample(rng: random.Random) -> dict[str, Any]:
    return {
        "learning_rate": math.exp(rng.uniform(math.log(1e-5), math.log(5e-5))),
        "weight_decay": rng.uniform(0.0, 0.1),
        "warmup_steps": rng.randint(0, 500),
    }


def build_store(url: str, trials: int, evaluations: int, seed: int) -> dict[str, Any]:
    from sweepctl.storage import Store, SweepState

    rng = random.Random(seed)
    rows = [_trial(i, rng) for i in range(trials)]
    with Store(url) as store:
        sweep_id = store.create_sweep(NAME, spec_dict(), [("screen", "ofat"), ("bayes", "bayes")])
        store.set_sweep_state(NAME, SweepState.RUNNING)
        store.set_stage_state(NAME, "screen", SweepState.RUNNING)
        store.set_stage_state(NAME, "screen", SweepState.COMPLETED, summary=_ofat_summary())
        store.set_stage_state(NAME, "bayes", SweepState.RUNNING)
        _bulk_insert(store, sweep_id, rows, evaluations)
    _optuna_study(url, rows)
    return {"sweep_id": sweep_id, "rows": rows}


def _trial(number: int, rng: random.Random) -> dict[str, Any]:
    params = sample(rng)
    roll = rng.random()
    state = "COMPLETED" if roll < 0.95 else "PRUNED" if roll < 0.98 else "FAILED"
    if number >= 9990:  # a live sweep: its last trials are still running
        state = "RUNNING"
    return {"number": number, "params": params, "state": state, "objective": loss(params, rng)}


def _bulk_insert(store: Any, sweep_id: int, rows: list[dict[str, Any]], evaluations: int) -> None:
    from sqlalchemy import insert, select

    from sweepctl.storage import TrialState
    from sweepctl.storage.models import Evaluation, Trial

    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    trial_rows = []
    for row in rows:
        began = start + timedelta(seconds=30 * row["number"])
        finished = row["state"] != "RUNNING"
        trial_rows.append(
            {
                "sweep_id": sweep_id,
                "number": row["number"],
                "optuna_trial_number": row["number"],
                "stage": "screen" if row["number"] < 7 else "bayes",
                "state": TrialState[row["state"]],
                "params": row["params"],
                "config": {"runner": "bench"},
                "objective": row["objective"] if finished else None,
                "metrics": {"eval_loss": row["objective"]} if finished else None,
                "resources": {"wall_time_s": 25.0} if finished else None,
                "error": "training loss became nan at step 3" if row["state"] == "FAILED" else None,
                "created_at": began,
                "started_at": began,
                "finished_at": began + timedelta(seconds=25) if finished else None,
            }
        )
    engine = store._engine  # bulk load through the Store's own engine (see module docstring)
    with engine.begin() as connection:
        connection.execute(insert(Trial), trial_rows)
        ids = dict(
            connection.execute(
                select(Trial.number, Trial.id).where(Trial.sweep_id == sweep_id)
            ).all()
        )
        connection.execute(insert(Evaluation), _evaluation_rows(rows, ids, evaluations, start))


def _evaluation_rows(
    rows: list[dict[str, Any]], ids: dict[int, int], count: int, when: datetime
) -> list[dict[str, Any]]:
    out = []
    for row in rows:
        final = row["objective"]
        for epoch in range(1, count + 1):
            scale = 1.0 + (count - epoch) * 0.5
            out.append(
                {
                    "trial_id": ids[row["number"]],
                    "epoch": float(epoch),
                    "step": epoch * 100,
                    "training_loss": final * scale * 0.9,
                    "eval_loss": final * scale,
                    "accuracy": 0.5 + 0.08 * epoch,
                    "metrics": {},
                    "created_at": when,
                }
            )
    return out


def _ofat_summary() -> dict[str, Any]:
    ranking = [
        {"name": name, "impact": 1.0 / (i + 1), "best_value": p["high"], "noise": False,
         "effects": [{"value": p["low"], "mean": 2.5, "std": None, "delta": 0.1, "n": 1},
                     {"value": p["high"], "mean": 2.0, "std": None, "delta": -0.4, "n": 1}]}
        for i, (name, p) in enumerate(SPACE.items())
    ]  # fmt: skip
    return {"ofat": {"baseline": {"mean": 2.4, "std": 0.05, "n": 3}, "ranking": ranking}}


def _optuna_study(url: str, rows: list[dict[str, Any]]) -> None:
    """The study through Optuna's API, its trials by bulk insert into Optuna's own tables:
    `study.add_trials` costs about 20 ms a trial here and grows with the study (it counts
    the trials before each insert), so 10,000 would take minutes. The study is then read
    back through Optuna to check it holds every finished trial."""
    import optuna
    from optuna.distributions import FloatDistribution, IntDistribution, distribution_to_json
    from optuna.storages._rdb import models  # bulk load only; the dashboard uses the API
    from sqlalchemy import insert, select

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    dists = {
        "learning_rate": FloatDistribution(1e-5, 5e-5, log=True),
        "weight_decay": FloatDistribution(0.0, 0.1),
        "warmup_steps": IntDistribution(0, 500),
    }
    storage = optuna.storages.RDBStorage(url)
    study_id = storage.create_new_study([optuna.study.StudyDirection.MINIMIZE], NAME)
    states = {"COMPLETED": "COMPLETE", "PRUNED": "PRUNED", "FAILED": "FAIL", "RUNNING": "RUNNING"}
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    trial_rows = [
        {
            "number": row["number"],
            "study_id": study_id,
            "state": optuna.trial.TrialState[states[row["state"]]],
            "datetime_start": now,
            "datetime_complete": None if row["state"] == "RUNNING" else now,
        }
        for row in rows
    ]
    with storage.engine.begin() as connection:
        connection.execute(insert(models.TrialModel), trial_rows)
        query = select(models.TrialModel.number, models.TrialModel.trial_id).where(
            models.TrialModel.study_id == study_id
        )
        ids = dict(connection.execute(query).all())
        params = [
            {
                "trial_id": ids[row["number"]],
                "param_name": name,
                "param_value": dists[name].to_internal_repr(value),
                "distribution_json": distribution_to_json(dists[name]),
            }
            for row in rows
            for name, value in row["params"].items()
        ]
        connection.execute(insert(models.TrialParamModel), params)
        finite = models.TrialValueModel.TrialValueType.FINITE
        values = [
            {
                "trial_id": ids[r["number"]],
                "objective": 0,
                "value": r["objective"],
                "value_type": finite,
            }
            for r in rows
            if r["state"] == "COMPLETED"
        ]
        connection.execute(insert(models.TrialValueModel), values)
    storage.engine.dispose()
    study = optuna.load_study(study_name=NAME, storage=url)
    complete = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(complete) == sum(r["state"] == "COMPLETED" for r in rows), "study not loaded"


def serve(url: str, home: str) -> tuple[str, Any]:
    import uvicorn

    from sweepctl.service.app import create_app
    from sweepctl.service.settings import ServeSettings

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = ServeSettings(db_url=url, home=home, port=port, run_controller=False)
    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return f"http://127.0.0.1:{port}", server


def endpoints(sweep_id: int, rows: list[dict[str, Any]], trial_ids: list[int]) -> dict[str, str]:
    done = sorted((r for r in rows if r["state"] == "COMPLETED"), key=lambda r: r["objective"])
    best3 = ",".join(str(trial_ids[r["number"]]) for r in done[:3])
    fifty = ",".join(str(trial_ids[r["number"]]) for r in done[:50])
    one = trial_ids[done[0]["number"]]
    return {
        "page /sweeps/{id}": f"/sweeps/{sweep_id}",
        "GET /api/v1/sweeps/{id}/trials": f"/api/v1/sweeps/{sweep_id}/trials",
        # every later poll of the page: rows changed since its previous answer (none here)
        "GET …/trials?since=cursor": f"/api/v1/sweeps/{sweep_id}/trials?since={_cursor()}",
        "GET /api/v1/sweeps/{id}/curves (3)": f"/api/v1/sweeps/{sweep_id}/curves?trials={best3}",
        "GET /api/v1/sweeps/{id}/curves (50)": f"/api/v1/sweeps/{sweep_id}/curves?trials={fifty}",
        "GET /api/v1/sweeps/{id}/ofat": f"/api/v1/sweeps/{sweep_id}/ofat",
        "GET /api/v1/sweeps/{id}/importance": f"/api/v1/sweeps/{sweep_id}/importance",
        "GET /api/v1/trials/{id}": f"/api/v1/trials/{one}",
        "page /trials/{id}": f"/trials/{one}",
        "page / (sweeps)": "/",
        "GET /api/v1/sweeps/{id}": f"/api/v1/sweeps/{sweep_id}",
    }


def _cursor() -> str:
    from urllib.parse import quote

    return quote(datetime.now(timezone.utc).isoformat())


def measure(base: str, paths: dict[str, str], calls: int) -> tuple[list[dict[str, Any]], float]:
    """Cold: each endpoint once, in page order, right after start (the page request also
    starts the importance computation in the background, which competes for the GIL).
    Then wait until importance is ready (returned as the second value, seconds since the
    page request). Warm: `calls` more of each, the steady state of a page left open."""
    import httpx

    with httpx.Client(base_url=base, timeout=120) as client:
        began = time.perf_counter()
        cold = {label: _timed(client, path) for label, path in paths.items()}
        importance = next(p for label, p in paths.items() if "importance" in label)
        while client.get(importance).json().get("pending"):
            time.sleep(0.1)
        ready = time.perf_counter() - began
        warm = {
            label: [_timed(client, path) for _ in range(calls)] for label, path in paths.items()
        }
    results = []
    for label in paths:
        times = [t for t, _ in warm[label]]
        results.append(
            {
                "endpoint": label,
                "cold_s": cold[label][0],
                "warm_median_s": statistics.median(times),
                "warm_max_s": max(times),
                "bytes": warm[label][-1][1],
                "under_target": max([cold[label][0], *times]) < TARGET_S,
            }
        )
    return results, ready


def _timed(client: Any, path: str) -> tuple[float, int]:
    began = time.perf_counter()
    response = client.get(path)
    elapsed = time.perf_counter() - began
    response.raise_for_status()
    return elapsed, len(response.content)


def print_table(results: list[dict[str, Any]], build_s: float, args: argparse.Namespace) -> None:
    print(
        f"\n{args.trials:,} trials x {args.evaluations} evaluations; store built in {build_s:.1f} s"
    )
    print(f"{'endpoint':40} {'cold s':>8} {'median s':>9} {'max s':>8} {'KiB':>8}  <1 s")
    for r in results:
        ok = "yes" if r["under_target"] else "NO"
        print(
            f"{r['endpoint']:40} {r['cold_s']:8.3f} {r['warm_median_s']:9.3f} "
            f"{r['warm_max_s']:8.3f} {r['bytes'] / 1024:8.0f}  {ok}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--evaluations", type=int, default=5)
    parser.add_argument("--calls", type=int, default=5, help="warm calls per endpoint")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="dashboard-scale-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'scale.db'}"
        began = time.perf_counter()
        built = build_store(url, args.trials, args.evaluations, args.seed)
        build_s = time.perf_counter() - began
        base, server = serve(url, tmp)
        try:
            trial_ids = _trial_ids(url, built["sweep_id"])
            paths = endpoints(built["sweep_id"], built["rows"], trial_ids)
            results, ready_s = measure(base, paths, args.calls)
        finally:
            server.should_exit = True
    print_table(results, build_s, args)
    print(f"importance ready {ready_s:.2f} s after the page was first requested")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps({**_report(results, build_s, args), "importance_ready_s": ready_s}, indent=2)
        )
    return 0 if all(r["under_target"] for r in results) else 1


def _trial_ids(url: str, sweep_id: int) -> list[int]:
    from sweepctl.storage import Store

    with Store(url) as store:
        return [t.id for t in store.trial_summaries(sweep_id)]


def _report(results: list[dict[str, Any]], build_s: float, args: argparse.Namespace) -> dict:
    return {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_average": os.getloadavg(),
        },
        "trials": args.trials,
        "evaluations_per_trial": args.evaluations,
        "warm_calls": args.calls,
        "store_build_s": round(build_s, 2),
        "target_s": TARGET_S,
        "results": results,
    }


if __name__ == "__main__":
    sys.exit(main())
