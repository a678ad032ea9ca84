"""Confirm: rerun the sweep's best few configurations with more seeds, then pick.

Why: the best single trial of a sweep is the best configuration plus the luckiest seed.
With top configurations a seed's noise apart, "best trial" often names the wrong one;
rerunning each with `seeds` seeds (repeat r = seed spec.seed + r, as OFAT's repeats)
measures the mean and its Student-t interval, and a paired test over shared seeds says
whether two configurations can be told apart at all.

Repeat 0 of every configuration is its original run and is answered from it
(orchestrator.reuse), as is any OFAT repeat already run, so the stage trains
top * (seeds - 1) runs at most, plus the baseline's. The plan depends on earlier results;
it is kept in the stage summary when the stage first starts (`plan_record`), so a resumed
stage reruns the same configurations even if the history were to change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import optuna
from optuna.trial import FrozenTrial, TrialState

from sweepctl.orchestrator.proposals import Proposal
from sweepctl.orchestrator.reuse import REUSED_ATTR
from sweepctl.orchestrator.search import REPEAT_ATTR, stage_trials
from sweepctl.orchestrator.strategies.base import Conclusion, FixedPlan, StageContext
from sweepctl.spec.stages import ConfirmStage, StageSpecBase
from sweepctl.stats import Interval, paired_t_test, t_interval

PLAN_KEY = "confirm_plan"  # the kept plan, in the stage summary
SUMMARY_KEY = "confirm"  # the conclusion, in the stage summary


class ConfirmStrategy(FixedPlan):
    name: ClassVar[str] = "confirm"
    spec_model: ClassVar[type[StageSpecBase]] = ConfirmStage
    prunable: ClassVar[bool] = False  # a mean over seeds needs every seed's full run
    reuses_pruned: ClassVar[bool] = False

    def planned_points(self, ctx: StageContext) -> list[Proposal]:
        plan = ConfirmPlan.of(ctx)
        return plan.proposals(ctx.stage_as(ConfirmStage).seeds) if plan else []

    def plan_record(self, ctx: StageContext) -> dict[str, Any]:
        plan = ConfirmPlan.of(ctx)
        return {PLAN_KEY: plan.to_dict()} if plan else {}

    def trial_budget(self, ctx: StageContext) -> int | None:
        """None (count the planned points) once the plan exists; before the earlier
        stages have finished, the most it can run, for progress bars."""
        if ConfirmPlan.of(ctx) is not None:
            return None
        stage = ctx.stage_as(ConfirmStage)
        return (stage.top + int(stage.baseline)) * stage.seeds

    def conclude(self, ctx: StageContext, study: optuna.Study) -> Conclusion:
        plan = ConfirmPlan.of(ctx)
        if plan is None:
            return Conclusion()
        stage = ctx.stage_as(ConfirmStage)
        runs = seed_runs(stage_trials(study, stage.name))
        summary = confirm_summary(plan, runs, stage, ctx.spec.objective, ctx.base)
        return Conclusion({SUMMARY_KEY: summary})


@dataclass(frozen=True)
class ConfirmPlan:
    """The configurations to confirm, best first, and the baseline to compare them with
    (None: not asked for, or it is one of them)."""

    configurations: list[dict[str, Any]]
    baseline: dict[str, Any] | None

    @classmethod
    def of(cls, ctx: StageContext) -> ConfirmPlan | None:
        """The kept plan when there is one, else the plan from the earlier stages' trials;
        None when they have no completed trial (nothing to confirm yet)."""
        kept = ctx.record.get(PLAN_KEY)
        if kept:
            return cls(list(kept["configurations"]), kept.get("baseline"))
        stage = ctx.stage_as(ConfirmStage)
        configurations = top_configurations(
            ctx.earlier_trials(), stage.top, ctx.spec.objective.maximize
        )
        if not configurations:
            return None
        base = dict(ctx.base) if stage.baseline and ctx.base not in configurations else None
        return cls(configurations, base)

    def proposals(self, seeds: int) -> list[Proposal]:
        """Seed by seed, so every configuration has its first seeds before any has all."""
        points = [(params, "confirm") for params in self.configurations]
        if self.baseline is not None:
            points.append((self.baseline, "baseline"))
        return [Proposal(dict(p), role, r) for r in range(seeds) for p, role in points]

    def to_dict(self) -> dict[str, Any]:
        return {"configurations": self.configurations, "baseline": self.baseline}


def top_configurations(trials: list[FrozenTrial], top: int, maximize: bool) -> list[dict[str, Any]]:
    """The `top` best distinct parameter sets among COMPLETE trials, each ranked by its
    best trial; the earlier trial wins a tie, so the choice is the same on every read."""
    complete = [t for t in trials if t.state is TrialState.COMPLETE and t.value is not None]
    sign = -1.0 if maximize else 1.0
    chosen: list[dict[str, Any]] = []
    for trial in sorted(complete, key=lambda t: (sign * float(t.value or 0.0), t.number)):
        if trial.params not in chosen:
            chosen.append(dict(trial.params))
        if len(chosen) == top:
            break
    return chosen


@dataclass(frozen=True)
class SeedRun:
    repeat: int
    value: float
    trained_by: int  # the Optuna number of the trial that trained it (itself, or reused)


def seed_runs(trials: list[FrozenTrial]) -> dict[tuple[tuple[str, Any], ...], list[SeedRun]]:
    """The stage's completed runs per configuration, one per repeat, in repeat order."""
    runs: dict[tuple[tuple[str, Any], ...], dict[int, SeedRun]] = {}
    for trial in trials:
        if trial.state is not TrialState.COMPLETE or trial.value is None:
            continue
        repeat = int(trial.user_attrs.get(REPEAT_ATTR) or 0)
        source = int(trial.user_attrs.get(REUSED_ATTR, trial.number))
        mine = runs.setdefault(_config(trial.params), {})
        mine.setdefault(repeat, SeedRun(repeat, float(trial.value), source))
    return {key: [found[r] for r in sorted(found)] for key, found in runs.items()}


def _config(params: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted(params.items()))


def confirm_summary(
    plan: ConfirmPlan,
    runs: dict[tuple[tuple[str, Any], ...], list[SeedRun]],
    stage: ConfirmStage,
    objective: Any,
    baseline: dict[str, Any],
) -> dict[str, Any]:
    """Each configuration's seed mean, std and 95% t interval; the winner by `pick`; a
    paired test of each against the winner and of the winner against the baseline (rerun
    for the purpose, or one of the top configurations itself)."""
    maximize = bool(objective.maximize)
    rows = [_row(params, rank, runs) for rank, params in enumerate(plan.configurations, 1)]
    rows = [row for row in rows if row["n"]]
    for row in rows:
        row["is_baseline"] = row["params"] == baseline
    base = _row(plan.baseline, 0, runs) if plan.baseline is not None else None
    base = base or next((row for row in rows if row["is_baseline"]), None)
    summary: dict[str, Any] = {
        "pick": stage.pick,
        "seeds": stage.seeds,
        "metric": objective.metric,
        "maximize": maximize,
        "configurations": rows,
        "baseline": base if base and base["n"] else None,
        "winner": None,
        "vs_baseline": None,
        "tied": [],
    }
    if not rows:
        return summary
    winner = max(rows, key=lambda row: _merit(row, stage.pick, maximize))
    for row in rows:
        row["vs_winner"] = None if row is winner else _paired(row, winner)
        row["verdict"] = _verdict(row, winner, maximize)
    summary["winner"] = winner
    summary["tied"] = [row["params"] for row in rows if row["verdict"] == "tied"]
    if summary["baseline"] is not None and summary["baseline"] is not winner:
        summary["vs_baseline"] = _paired(winner, summary["baseline"])
    return summary


def _row(
    params: dict[str, Any], rank: int, runs: dict[tuple[tuple[str, Any], ...], list[SeedRun]]
) -> dict[str, Any]:
    found = runs.get(_config(params), [])
    values = [run.value for run in found]
    interval = t_interval(values).to_dict() if values else None
    return {
        "rank": rank,  # by the best single trial, as the sweep ranked it before the stage
        "params": dict(params),
        "n": len(values),
        "repeats": [run.repeat for run in found],
        "objectives": values,
        "trials": [run.trained_by for run in found],
        "interval": interval,
    }


def _merit(row: dict[str, Any], pick: str, maximize: bool) -> tuple[float, int]:
    """Larger is better. lower_bound: the interval's pessimistic end (its low when
    maximising, its high when minimising); the better original rank wins a tie."""
    interval = Interval.from_dict(row["interval"])
    pessimistic = interval.low if maximize else interval.high
    value = interval.estimate if pick == "mean" else pessimistic
    return (value if maximize else -value, -row["rank"])


def _paired(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any] | None:
    """a - b over the seeds both have; None when they share none."""
    mine = dict(zip(a["repeats"], a["objectives"], strict=True))
    theirs = dict(zip(b["repeats"], b["objectives"], strict=True))
    shared = sorted(set(mine) & set(theirs))
    if not shared:
        return None
    test = paired_t_test([mine[r] for r in shared], [theirs[r] for r in shared])
    return {**test.to_dict(), "repeats": shared}


def _verdict(row: dict[str, Any], winner: dict[str, Any], maximize: bool) -> str:
    """winner; tied: the paired interval contains 0; worse or better otherwise."""
    if row is winner:
        return "winner"
    test = row["vs_winner"]
    if test is None or not test["distinguishable"]:
        return "tied"
    ahead = test["mean_difference"] > 0.0
    return "better" if ahead == maximize else "worse"
