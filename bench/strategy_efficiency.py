"""Strategy efficiency: the compute each sweep plan needs to find what a full grid finds.

Why this exists: the staged plan (OFAT screening -> grid over the top parameters -> TPE
over the top few, warm-started) is sweepctl's answer to "a full grid is too expensive".
Whether it is cheaper is only worth quoting on a real landscape with a known optimum, so
this replays the NMTLC learning curves of one corpus (../shared/data/nmtlc), where 420 of
the grid's 432 configurations were trained for real (the replay runner gives the 12
missing ones, all 6-layer 1024-wide models, their nearest record), through the same code
path as a sweep: SweepRun + launch, InlineBackend, the `replay:` runner, a fresh SQLite
database per run.

    target   = the best objective (min dev perplexity) of the full grid, run through launch
    compute  = trial-epochs: replayed checkpoints (evaluations stored) summed over trials,
               in the order trials finished, up to and including the first COMPLETED trial
               whose objective <= target + 1e-9 (what the sweep itself reports as best)

A run stops at that trial (the same way `sweepctl cancel` stops a sweep): later trials
cannot change the figure. Plans that never reach it run their whole budget.

Compute counts trainings only: a configuration a sweep already finished is answered from
that run without a worker (orchestrator/reuse.py), so it adds no trial-epochs, and the
"re-run" column (epochs spent on a configuration already tried) stays 0 unless that breaks.
Pruning rows are spec settings, `asha` or `median:patience=2:min_trials=3`
(bench/efficiency_plans.py); the default pruned row is the setting chosen on dev seeds
100-104 (--seed-base 100 --seeds 5), reported on seeds 0-9.

    python bench/strategy_efficiency.py --json out.json          # the documented table
    python bench/strategy_efficiency.py --plans staged --pruning asha,hyperband --seeds 3
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import random
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # `python bench/strategy_efficiency.py` from the repo root
    sys.path.insert(0, str(REPO_ROOT))

from bench.efficiency_plans import (  # noqa: E402 (after the sys.path line)
    CHOSEN_PRUNING,
    DATASET,
    DEFAULT_PLANS,
    GRID,
    LANDSCAPES,
    PLAN_NAMES,
    PRUNERS,
    Plan,
    plans,
    sweep_spec,
)
from bench.efficiency_report import (  # noqa: E402
    LEGEND,
    NEAR,
    plan_summary,
    render_corpus,
    rows,
    verdicts,
)

NMTLC_FILE = REPO_ROOT.parent / "shared" / "data" / "nmtlc" / "nmtlc.json"
TOLERANCE = 1e-9


@dataclass(frozen=True)
class Job:
    plan: Plan
    pruning: str
    seed: int
    nmtlc: str
    target: float | None  # None: run the whole plan (the reference grid)
    corpus: str = DATASET
    budget: int | None = None  # trainings in all; the run is cancelled at the cap


TrialStep = tuple[int, float | None, str]  # evaluations stored, COMPLETED objective, params


@dataclass
class Outcome:
    corpus: str
    plan: str
    pruning: str
    seed: int
    reached: bool
    epochs_to_reach: int | None
    trials_to_reach: int | None
    epochs_to_near: int | None
    epochs_run: int
    trials_run: int
    repeat_epochs: int  # spent on a configuration this run had already tried
    best: float | None
    failed: int
    wall_s: float
    per_trial: list[TrialStep] = field(default_factory=list)


# --- one run ----------------------------------------------------------------------------------


class StopAtTarget:
    """The sweep's on_event hook: cancel the sweep once a trial reaches the target, or once
    it has trained `budget` times, through the store, exactly as `sweepctl cancel` does
    from another terminal. The budget cap gives a staged plan the same number of trainings
    as plain TPE, whatever its OFAT and grid stages happened to cost."""

    def __init__(self, store: Any, name: str, target: float | None, budget: int | None) -> None:
        self.store, self.name, self.target, self.budget = store, name, target, budget
        self.trainings = 0

    def __call__(self, kind: str, data: dict[str, Any]) -> None:
        if kind != "trial_finished":
            return
        self.trainings += 1
        hit = self.target is not None and _hits(data.get("result"), self.target)
        if hit or (self.budget is not None and self.trainings >= self.budget):
            from sweepctl.storage import SweepState

            self.store.set_sweep_state(self.name, SweepState.CANCELLED)


def _hits(result: Any, target: float) -> bool:
    return (
        result.state == "COMPLETED"
        and result.objective is not None
        and result.objective <= target + TOLERANCE
    )


@contextlib.contextmanager
def shuffled_grid(seed: int | None) -> Iterator[None]:
    """sweepctl enqueues a grid in itertools order; a benchmark that always meets the
    optimum at the same position measures the order, not the strategy. Shuffles the grid
    strategy's planned points, for this process only."""
    from sweepctl.orchestrator.strategies.grid import GridStrategy

    original = GridStrategy.planned_points
    if seed is None:
        yield
        return

    def shuffled(self: GridStrategy, ctx: Any) -> list[Any]:
        proposals = list(original(self, ctx))
        random.Random(seed).shuffle(proposals)
        return proposals

    GridStrategy.planned_points = shuffled  # type: ignore[method-assign]
    try:
        yield
    finally:
        GridStrategy.planned_points = original  # type: ignore[method-assign]


def run_job(job: Job) -> Outcome:
    """One plan, one seed, one fresh SQLite database; the outcome is read back from the store."""
    from sweepctl.orchestrator.backends import InlineBackend
    from sweepctl.orchestrator.sweep import SweepRun, launch
    from sweepctl.storage import Store

    started = time.perf_counter()
    spec = sweep_spec(job.plan, job.pruning, job.seed, job.corpus)
    with tempfile.TemporaryDirectory(prefix="bench-efficiency-") as tmp:
        url = f"sqlite:///{tmp}/sweep.db"
        store = Store(url)
        try:
            hook = StopAtTarget(store, spec.name, job.target, job.budget)
            run = SweepRun(spec, store, InlineBackend(), url, tmp, f"replay:{job.nmtlc}", hook)
            with shuffled_grid(job.seed if job.plan.shuffle_grid else None):
                launch(run)
            trials = store.list_trials(spec.name)
        finally:
            store.close()
    outcome = outcome_of(job, trials)
    outcome.wall_s = time.perf_counter() - started
    return outcome


def outcome_of(job: Job, trials: list[Any]) -> Outcome:
    """Walk the trials in the order they finished, adding up their stored evaluations."""
    ordered = sorted(trials, key=lambda t: (t.finished_at is None, t.finished_at, t.id))
    per_trial = [
        (len(t.evaluations), _completed_objective(t), json.dumps(t.params, sort_keys=True))
        for t in ordered
    ]
    outcome = outcome_from_sequence(job, per_trial)
    outcome.failed = sum(t.state.name == "FAILED" for t in trials)
    return outcome


def _completed_objective(trial: Any) -> float | None:
    return trial.objective if trial.state.name == "COMPLETED" else None


def outcome_from_sequence(job: Job, per_trial: list[TrialStep]) -> Outcome:
    target = job.target if job.target is not None else -math.inf
    reach = _first_at_most(per_trial, target + TOLERANCE)
    if reach is not None:
        per_trial = per_trial[: reach[1]]  # a run stops here (StopAtTarget)
    near = _first_at_most(per_trial, target * (1 + NEAR) + TOLERANCE)
    scores = [o for _, o, _ in per_trial if o is not None]
    return Outcome(
        corpus=job.corpus,
        plan=job.plan.name,
        pruning=job.pruning,
        seed=job.seed,
        reached=reach is not None,
        epochs_to_reach=reach[0] if reach else None,
        trials_to_reach=reach[1] if reach else None,
        epochs_to_near=near[0] if near else None,
        epochs_run=sum(e for e, _, _ in per_trial),
        trials_run=len(per_trial),
        repeat_epochs=_repeat_epochs(per_trial),
        best=min(scores) if scores else None,
        failed=0,
        wall_s=0.0,
        per_trial=per_trial,
    )


def _first_at_most(per_trial: list[TrialStep], threshold: float) -> tuple[int, int] | None:
    """(trial-epochs spent, trials run) when a COMPLETED objective first got <= threshold."""
    spent = 0
    for index, (epochs, objective, _) in enumerate(per_trial):
        spent += epochs
        if objective is not None and objective <= threshold:
            return spent, index + 1
    return None


def _repeat_epochs(per_trial: list[TrialStep]) -> int:
    """Samplers over a finite categorical space propose configurations again; sweepctl runs
    them again, and on a replay that compute can only return the same curve."""
    seen: set[str] = set()
    total = 0
    for epochs, _, key in per_trial:
        total += epochs if key in seen else 0
        seen.add(key)
    return total


def reordered_grid(reference: Outcome, job: Job) -> Outcome:
    """Without pruning, grid trials are independent: a shuffled grid's trials are the
    reference run's trials in the order `shuffled_grid` would enqueue them. Computed from
    the reference run instead of replaying 432 trials again per seed (--rerun-grid does)."""
    order = list(range(len(reference.per_trial)))
    random.Random(job.seed).shuffle(order)  # the same permutation shuffled_grid applies
    outcome = outcome_from_sequence(job, [reference.per_trial[i] for i in order])
    outcome.failed = reference.failed
    return outcome


# --- the benchmark ----------------------------------------------------------------------------


def warm_worker(nmtlc: str) -> None:
    """Per worker process: the transformers import sweepctl's spec code does on first use
    and the parse of nmtlc.json are paid once, not inside the first job's wall time."""
    from sweepctl.spec.models import training_argument_names
    from sweepctl.workers.replay import ReplayRunner

    training_argument_names()
    ReplayRunner.cached(Path(nmtlc))


def reference_grid(nmtlc: str, corpus: str) -> Outcome:
    """The full grid, itertools order, no pruning: the target and 100% of the compute."""
    warm_worker(nmtlc)
    plan = replace(GRID, shuffle_grid=False)
    return run_job(Job(plan, "none", 0, nmtlc, None, corpus))


def jobs_for(args: argparse.Namespace, corpus: str, target: float) -> list[Job]:
    jobs = []
    for plan in plans(args):
        for pruning in args.pruning:
            if plan.shuffle_grid and pruning == "none" and not args.rerun_grid:
                continue  # derived from the reference run
            budget = None if plan.shuffle_grid or plan.name == "gp" else args.n_trials
            seeds = _seeds(args, plan, pruning)
            nmtlc = str(args.nmtlc)
            jobs += [Job(plan, pruning, seed, nmtlc, target, corpus, budget) for seed in seeds]
    return jobs


def _seeds(args: argparse.Namespace, plan: Plan, pruning: str) -> list[int]:
    count = args.seeds
    if plan.name == "gp":
        count = min(count, args.gp_seeds)
    if plan.shuffle_grid and pruning != "none":
        count = min(count, args.grid_pruning_seeds)
    return [args.seed_base + i for i in range(count)]


def run_all(args: argparse.Namespace) -> tuple[dict[str, Outcome], list[Outcome]]:
    """Every corpus's reference grid first (each is its target), then every job of every
    corpus in one pool, longest first so the workers finish together."""
    nmtlc = str(args.nmtlc)
    pool = ProcessPoolExecutor(args.jobs, initializer=warm_worker, initargs=(nmtlc,))
    with pool:
        grids = pool.map(reference_grid, [nmtlc] * len(args.corpus), args.corpus)
        references = dict(zip(args.corpus, grids, strict=True))
        for corpus, reference in references.items():
            assert reference.best is not None and reference.failed == 0, f"{corpus}: grid failed"
        jobs = [j for c in args.corpus for j in jobs_for(args, c, references[c].best or 0.0)]
        weight = {"grid": 0, "gp": 1}
        jobs.sort(key=lambda j: (weight.get(j.plan.name, 2), j.pruning == "none"))
        outcomes = list(pool.map(run_job, jobs))
    if "grid" in args.plans and "none" in args.pruning and not args.rerun_grid:
        for corpus, reference in references.items():
            for seed in _seeds(args, GRID, "none"):
                job = Job(GRID, "none", seed, nmtlc, reference.best, corpus)
                outcomes.append(reordered_grid(reference, job))
    return references, outcomes


def environment() -> dict[str, Any]:
    import optuna

    return {
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "python": platform.python_version(),
        "optuna": optuna.__version__,
        "platform": platform.platform(),
    }


def write_json(path: Path, args: argparse.Namespace, payload: dict[str, Any]) -> None:
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    path.parent.mkdir(parents=True, exist_ok=True)  # a fresh clone has no bench/results/
    path.write_text(json.dumps({"settings": settings, **payload}, indent=2) + "\n")


def _finite(data: dict[str, Any]) -> dict[str, Any]:
    """JSON has no infinity: a plan that never reached the target gets null."""
    return {k: None if isinstance(v, float) and math.isinf(v) else v for k, v in data.items()}


def _staged_setting(text: str) -> tuple[int, int, int]:
    grid_top, bayes_top, n_trials = (int(part) for part in text.split(","))
    return grid_top, bayes_top, n_trials


def _corpora(text: str) -> list[str]:
    names = list(LANDSCAPES) if text == "all" else text.split(",")
    unknown = [name for name in names if name not in LANDSCAPES]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown corpus {unknown}; known: {list(LANDSCAPES)}")
    return names


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--corpus", type=_corpora, default=list(LANDSCAPES), help="NAME[,NAME] or all (default)"
    )
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--seed-base", type=int, default=0, help="seeds are base..base+n-1")
    parser.add_argument("--n-trials", type=int, default=100, help="trainings per plan (budget)")
    parser.add_argument("--gp-trials", type=int, default=100)
    parser.add_argument("--gp-seeds", type=int, default=5, help="fewer seeds: time budget")
    parser.add_argument("--grid-pruning-seeds", type=int, default=3, help="the same reason")
    parser.add_argument(
        "--staged",
        type=_staged_setting,
        action="append",
        metavar="GRID_TOP,BAYES_TOP,N_TRIALS",
        help="a literal staged-plan setting (repeatable); default 2,3,40",
    )
    parser.add_argument(
        "--release-grid-top",
        type=lambda text: [int(part) for part in text.split(",")],
        default=[2],
        help="grid sizes of the release plan (0: no grid stage), comma-separated",
    )
    parser.add_argument("--focus-trials", type=int, default=20)
    parser.add_argument(
        "--plans",
        type=lambda text: text.split(","),
        default=list(DEFAULT_PLANS),
        help=f"comma-separated subset of {','.join(PLAN_NAMES)}",
    )
    parser.add_argument(
        "--pruning",
        type=lambda text: text.split(","),
        default=["none", CHOSEN_PRUNING],
        help=f"comma-separated pruning settings: {'|'.join(PRUNERS)}, optionally with spec "
        "keys, e.g. asha:min_epochs=3:patience=2 (min_epochs 1 unless given)",
    )
    parser.add_argument("--rerun-grid", action="store_true", help="replay each shuffled grid")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes")
    parser.add_argument("--nmtlc", type=Path, default=NMTLC_FILE)
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    args = parser.parse_args(argv)
    args.staged = args.staged or [(2, 3, 40)]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.nmtlc.is_file():
        print(f"skipped: NMTLC not found at {args.nmtlc} (see ../shared/README.md)")
        return 0
    started = time.perf_counter()
    references, outcomes = run_all(args)
    table = rows(outcomes)
    env = environment()
    print(f"Python {env['python']}, optuna {env['optuna']}, {env['usable_cpus']} CPUs\n")
    for reference in references.values():
        print(*render_corpus(reference, table), sep="\n")
    print(*LEGEND, sep="\n")
    found = verdicts(table, outcomes)
    print("", *(v.line() for v in found), "", *plan_summary(found), sep="\n")
    print(f"\nbenchmark wall time {time.perf_counter() - started:.0f} s")
    if args.json is not None:
        payload = {
            "environment": env,
            "references": {c: asdict(replace(r, per_trial=[])) for c, r in references.items()},
            "rows": [_finite(asdict(row)) for row in table],
            "verdicts": [asdict(v) for v in found],
            "outcomes": [asdict(replace(o, per_trial=[])) for o in outcomes],
        }
        write_json(args.json, args, payload)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
