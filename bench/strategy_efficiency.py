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
import statistics
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
    GRID,
    PLAN_NAMES,
    PRUNERS,
    Plan,
    plans,
    sweep_spec,
)

NMTLC_FILE = REPO_ROOT.parent / "shared" / "data" / "nmtlc" / "nmtlc.json"
TOLERANCE = 1e-9
ISSUE_TARGET_FRACTION = 0.25
NEAR = 0.01  # a second, looser mark: within 1% of the grid best


@dataclass(frozen=True)
class Job:
    plan: Plan
    pruning: str
    seed: int
    nmtlc: str
    target: float | None  # None: run the whole plan (the reference grid)


TrialStep = tuple[int, float | None, str]  # evaluations stored, COMPLETED objective, params


@dataclass
class Outcome:
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
    """The sweep's on_event hook: cancel the sweep once a trial reaches the target, through
    the store, exactly as `sweepctl cancel` does from another terminal."""

    def __init__(self, store: Any, name: str, target: float | None) -> None:
        self.store, self.name, self.target = store, name, target

    def __call__(self, kind: str, data: dict[str, Any]) -> None:
        result = data.get("result")
        if kind != "trial_finished" or self.target is None or not _hits(result, self.target):
            return
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
    spec = sweep_spec(job.plan, job.pruning, job.seed)
    with tempfile.TemporaryDirectory(prefix="bench-efficiency-") as tmp:
        url = f"sqlite:///{tmp}/sweep.db"
        store = Store(url)
        try:
            hook = StopAtTarget(store, spec.name, job.target)
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


def reference_grid(nmtlc: str) -> Outcome:
    """The full grid, itertools order, no pruning: the target and 100% of the compute."""
    warm_worker(nmtlc)
    return run_job(Job(replace(GRID, shuffle_grid=False), "none", 0, nmtlc, None))


def jobs_for(args: argparse.Namespace, target: float) -> list[Job]:
    """Longest first, so two workers finish together."""
    jobs = []
    for plan in plans(args):
        for pruning in args.pruning:
            if plan.shuffle_grid and pruning == "none" and not args.rerun_grid:
                continue  # derived from the reference run
            seeds = _seeds(args, plan, pruning)
            jobs += [Job(plan, pruning, seed, str(args.nmtlc), target) for seed in seeds]
    weight = {"grid": 0, "gp": 1}
    return sorted(jobs, key=lambda j: (weight.get(j.plan.name, 2), j.pruning == "none"))


def _seeds(args: argparse.Namespace, plan: Plan, pruning: str) -> list[int]:
    count = args.seeds
    if plan.name == "gp":
        count = min(count, args.gp_seeds)
    if plan.shuffle_grid and pruning != "none":
        count = min(count, args.grid_pruning_seeds)
    return [args.seed_base + i for i in range(count)]


def run_all(args: argparse.Namespace) -> tuple[Outcome, list[Outcome]]:
    reference = reference_grid(str(args.nmtlc))
    assert reference.best is not None and reference.failed == 0, "the reference grid failed"
    jobs = jobs_for(args, reference.best)
    pool = ProcessPoolExecutor(args.jobs, initializer=warm_worker, initargs=(str(args.nmtlc),))
    with pool:
        outcomes = list(pool.map(run_job, jobs))
    if "grid" in args.plans and "none" in args.pruning and not args.rerun_grid:
        for seed in _seeds(args, GRID, "none"):
            job = Job(GRID, "none", seed, str(args.nmtlc), reference.best)
            outcomes.append(reordered_grid(reference, job))
    return reference, outcomes


# --- reporting --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One plan x pruning, medians over its seeds; a seed that never reached a mark counts
    as infinite compute, so a median is finite only if at least half the seeds got there."""

    plan: str
    pruning: str
    seeds: int
    reached: int
    median_epochs: float
    median_trials: float
    near_reached: int
    median_near_epochs: float
    median_spent: float
    median_repeat_epochs: float
    median_best: float


def rows(outcomes: list[Outcome]) -> list[Row]:
    groups: dict[tuple[str, str], list[Outcome]] = {}
    for outcome in outcomes:
        groups.setdefault((outcome.plan, outcome.pruning), []).append(outcome)
    return [_row(plan, pruning, group) for (plan, pruning), group in groups.items()]


def _row(plan: str, pruning: str, group: list[Outcome]) -> Row:
    return Row(
        plan=plan,
        pruning=pruning,
        seeds=len(group),
        reached=sum(o.reached for o in group),
        median_epochs=_median_or_inf([o.epochs_to_reach for o in group]),
        median_trials=_median_or_inf([o.trials_to_reach for o in group]),
        near_reached=sum(o.epochs_to_near is not None for o in group),
        median_near_epochs=_median_or_inf([o.epochs_to_near for o in group]),
        median_spent=statistics.median(o.epochs_run for o in group),
        median_repeat_epochs=statistics.median(o.repeat_epochs for o in group),
        median_best=statistics.median(o.best if o.best is not None else math.inf for o in group),
    )


def _median_or_inf(values: list[int | None]) -> float:
    return statistics.median(math.inf if v is None else v for v in values)


HEADER = (
    f"{'plan':<18} | {'pruning':<22} | {'to grid best':>12} | {'% grid':>6} | {'reached':>7} "
    f"| {'trials':>6} | {'to 1%':>5} | {'% grid':>6} | {'in 1%':>5} | {'spent':>5} "
    f"| {'re-run':>6} | {'best':>7}"
)


def render(reference: Outcome, table: list[Row], env: dict[str, Any]) -> str:
    full = reference.epochs_run
    lines = [
        f"NMTLC {DATASET}: {len(reference.per_trial)} grid configurations, full grid = {full} "
        f"trial-epochs, grid best (target) = {reference.best:.6f} perplexity",
        f"Python {env['python']}, optuna {env['optuna']}, {env['usable_cpus']} CPUs",
        "",
        HEADER,
        "-" * len(HEADER),
        *(_render_row(row, full) for row in table),
        "",
        "columns (medians over seeds; 'inf'/'-' = not reached in most seeds):",
        "  to grid best: trial-epochs until a COMPLETED trial matched the grid best; "
        "reached: seeds that got there",
        f"  to 1%: the same for the looser mark objective <= {1 + NEAR:g} x grid best",
        "  spent: trial-epochs the run used (up to the grid best, else its whole budget); "
        "re-run: of those, on configurations the run had already tried; best: best COMPLETED",
    ]
    return "\n".join(lines)


def _render_row(row: Row, full: int) -> str:
    return (
        f"{row.plan:<18} | {row.pruning:<22} | {_count(row.median_epochs):>12} | "
        f"{_share(row.median_epochs, full):>6} | {row.reached:>3}/{row.seeds:<3} | "
        f"{_count(row.median_trials):>6} | {_count(row.median_near_epochs):>5} | "
        f"{_share(row.median_near_epochs, full):>6} | {row.near_reached:>2}/{row.seeds:<2} | "
        f"{row.median_spent:>5.0f} | {row.median_repeat_epochs:>6.0f} | {row.median_best:>7.4f}"
    )


def _count(value: float) -> str:
    return "inf" if math.isinf(value) else f"{value:.0f}"


def _share(value: float, full: int) -> str:
    return "-" if math.isinf(value) else f"{100 * value / full:.1f}%"


def verdict(table: list[Row], full: int) -> list[str]:
    """The issue's question, answered for every staged setting run with pruning."""
    lines = []
    for row in table:
        if row.plan.startswith("staged") and row.pruning != "none":
            share = row.median_epochs / full
            meets = "MEETS" if share <= ISSUE_TARGET_FRACTION else "MISSES"
            shown = "never (median)" if math.isinf(share) else f"{100 * share:.1f}%"
            lines.append(
                f"{row.plan} + {row.pruning}: {shown} of the grid's compute to the grid best, "
                f"reached in {row.reached}/{row.seeds} seeds -> {meets} the issue's <= "
                f"{100 * ISSUE_TARGET_FRACTION:.0f}%"
            )
    return lines


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


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--seed-base", type=int, default=0, help="seeds are base..base+n-1")
    parser.add_argument("--n-trials", type=int, default=100, help="random and TPE budget")
    parser.add_argument("--gp-trials", type=int, default=100)
    parser.add_argument("--gp-seeds", type=int, default=5, help="fewer seeds: time budget")
    parser.add_argument("--grid-pruning-seeds", type=int, default=3, help="the same reason")
    parser.add_argument(
        "--staged",
        type=_staged_setting,
        action="append",
        metavar="GRID_TOP,BAYES_TOP,N_TRIALS",
        help="a staged-plan setting (repeatable); default 2,3,40 and 2,4,40",
    )
    parser.add_argument(
        "--plans",
        type=lambda text: text.split(","),
        default=list(PLAN_NAMES),
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
    args.staged = args.staged or [(2, 3, 40), (2, 4, 40)]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.nmtlc.is_file():
        print(f"skipped: NMTLC not found at {args.nmtlc} (see ../shared/README.md)")
        return 0
    started = time.perf_counter()
    reference, outcomes = run_all(args)
    table = rows(outcomes)
    env = environment()
    print(render(reference, table, env))
    print("", *verdict(table, reference.epochs_run), sep="\n")
    print(f"\nbenchmark wall time {time.perf_counter() - started:.0f} s")
    if args.json is not None:
        payload = {
            "environment": env,
            "reference": asdict(replace(reference, per_trial=[])),
            "rows": [_finite(asdict(row)) for row in table],
            "outcomes": [asdict(replace(o, per_trial=[])) for o in outcomes],
        }
        write_json(args.json, args, payload)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
