"""How often a selection rule picks a configuration the held-out seeds cannot tell from the
true best: the arithmetic of bench/selection_quality.py, kept apart so it reads as one page
and can be checked on numbers whose answer is known.

Why held-out seeds: if the seeds a rule selects with also defined the truth, the confirm
rule would agree with the truth by construction. Each replicate therefore splits the
seeds of a full table (configurations x seeds, every cell a real training) into the seeds
a sweep would have run and the seeds that play the truth:

    sweep seed   s            the one seed a single-seed sweep trains every configuration with
    confirm seeds s + 2 more  what a confirm stage reruns its top configurations with
    held out     the rest     the truth: each configuration's mean over these seeds

Every ordered choice (s, then the unordered pair) is one replicate, so the figures are
exact averages over all of them and need no random numbers. A pick is "within noise" when
a paired t-test over the held-out seeds cannot tell it from the held-out best (stats'
paired_t_test, 95%): what a user who reran both with fresh seeds would conclude.

The confirm rule is sweepctl's own: `top_configurations` ranks by the single-seed result
and `confirm_summary` picks by the seed mean (or the interval's pessimistic end), exactly
as the confirm stage does.
"""

from __future__ import annotations

import itertools
import statistics
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from sweepctl.orchestrator.strategies.confirm import ConfirmPlan, SeedRun, confirm_summary
from sweepctl.spec.stages import ConfirmStage
from sweepctl.stats import paired_t_test

Config = tuple[tuple[str, Any], ...]
Table = dict[Config, dict[int, float]]  # configuration -> seed (repeat) -> objective


@dataclass(frozen=True)
class Replicate:
    sweep_seed: int
    confirm_seeds: tuple[int, ...]
    held_out: tuple[int, ...]


@dataclass(frozen=True)
class Verdict:
    """One rule's pick in one replicate, judged on the held-out seeds."""

    pick: Config
    exact: bool  # the held-out best itself
    within_noise: bool  # not distinguishable from it over the held-out seeds
    regret: float  # held-out best mean - the pick's held-out mean (>= 0, objective units)


@dataclass(frozen=True)
class RuleSummary:
    rule: str
    replicates: int
    within_noise: int
    exact: int
    mean_regret: float
    trainings: int  # what the rule trains, reused runs counted once

    @property
    def within_noise_rate(self) -> float:
        return self.within_noise / self.replicates

    @property
    def exact_rate(self) -> float:
        return self.exact / self.replicates


def replicates(seeds: list[int], confirm_seeds: int) -> list[Replicate]:
    """Every (sweep seed, extra confirm seeds) choice; at least two seeds stay held out so
    the paired test has a spread to work with."""
    if len(seeds) - confirm_seeds < 2:
        raise ValueError(f"{len(seeds)} seeds leave fewer than 2 held out of {confirm_seeds}")
    found = []
    for first in seeds:
        rest = [s for s in seeds if s != first]
        for extra in itertools.combinations(rest, confirm_seeds - 1):
            chosen = (first, *extra)
            held = tuple(s for s in seeds if s not in chosen)
            found.append(Replicate(first, chosen, held))
    return found


def complete_seeds(table: Table) -> list[int]:
    """The seeds every configuration has: a replicate needs the whole row."""
    common = set.intersection(*(set(runs) for runs in table.values()))
    return sorted(common)


def single_seed_pick(table: Table, seed: int, maximize: bool) -> Config:
    """What a sweep that trained each configuration once picks; ties go to the earlier
    configuration, as the store's ranking does."""
    sign = 1.0 if maximize else -1.0
    return max(table, key=lambda config: sign * table[config][seed])


def confirm_pick(table: Table, rep: Replicate, top: int, pick: str, maximize: bool) -> Config:
    """The confirm stage's pick: its top `top` by the sweep seed, rerun on the confirm seeds."""
    sign = 1.0 if maximize else -1.0
    ranked = sorted(table, key=lambda config: -sign * table[config][rep.sweep_seed])[:top]
    runs: dict[Config, list[SeedRun]] = {
        config: [
            SeedRun(index, table[config][seed], 0) for index, seed in enumerate(rep.confirm_seeds)
        ]
        for config in ranked
    }
    plan = ConfirmPlan([dict(config) for config in ranked], None)
    stage = ConfirmStage(
        name="confirm", strategy="confirm", top=top, seeds=len(rep.confirm_seeds), pick=pick
    )
    objective = SimpleNamespace(metric="objective", maximize=maximize)
    summary = confirm_summary(plan, runs, stage, objective, baseline={})
    return tuple(sorted(summary["winner"]["params"].items()))


def judge(table: Table, held_out: tuple[int, ...], pick: Config, maximize: bool) -> Verdict:
    sign = 1.0 if maximize else -1.0
    means = {config: statistics.fmean(table[config][s] for s in held_out) for config in table}
    best = max(means, key=lambda config: sign * means[config])
    if pick == best:
        return Verdict(pick, True, True, 0.0)
    test = paired_t_test([table[best][s] for s in held_out], [table[pick][s] for s in held_out])
    return Verdict(pick, False, not test.distinguishable, sign * (means[best] - means[pick]))


def summarise(rule: str, verdicts: list[Verdict], trainings: int) -> RuleSummary:
    return RuleSummary(
        rule=rule,
        replicates=len(verdicts),
        within_noise=sum(v.within_noise for v in verdicts),
        exact=sum(v.exact for v in verdicts),
        mean_regret=statistics.fmean(v.regret for v in verdicts),
        trainings=trainings,
    )


def compare_rules(table: Table, confirm_seeds: int, top: int, maximize: bool) -> list[RuleSummary]:
    """Single-seed selection and the confirm stage (pick by mean, and by lower bound) over
    every replicate of the table. Trainings: the grid once, plus the confirm reruns (the
    sweep seed's runs reused)."""
    seeds = complete_seeds(table)
    reps = replicates(seeds, confirm_seeds)
    grid = len(table)
    confirm_cost = grid + min(top, grid) * (confirm_seeds - 1)
    single = [
        judge(table, r.held_out, single_seed_pick(table, r.sweep_seed, maximize), maximize)
        for r in reps
    ]
    found = [summarise("single seed", single, grid)]
    for pick in ("mean", "lower_bound"):
        verdicts = [
            judge(table, r.held_out, confirm_pick(table, r, top, pick, maximize), maximize)
            for r in reps
        ]
        found.append(
            summarise(
                f"confirm top {top} x {confirm_seeds} seeds, pick {pick}", verdicts, confirm_cost
            )
        )
    return found
