"""A sweep's confirmed best, read from the summary its confirm stage stored.

Why its own module: `status`, `export`, `launch`'s last line and the API all answer "which
configuration is best" with the confirm stage's pick when there is one, and they must
agree. It reads stored summaries only (no Optuna, no spec models), so the fast commands
stay fast; the summary is written by orchestrator.strategies.confirm.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sweepctl.storage import StageRecord, SweepState

SUMMARY_KEY = "confirm"  # orchestrator.strategies.confirm.SUMMARY_KEY


@dataclass(frozen=True)
class Confirmed:
    """`winner`, `configurations` and `baseline` are the stored rows: params, n, repeats,
    objectives, trials (the Optuna numbers that trained each seed) and interval."""

    stage: str
    pick: str
    metric: str
    maximize: bool
    winner: dict[str, Any]
    configurations: list[dict[str, Any]]
    tied: list[dict[str, Any]]
    baseline: dict[str, Any] | None
    vs_baseline: dict[str, Any] | None

    @property
    def ties(self) -> bool:
        return bool(self.tied)

    def ranked(self) -> list[dict[str, Any]]:
        """The winner first, then the rest by the stage's own criterion, as `pick` saw it."""
        rest = [row for row in self.configurations if row["params"] != self.winner["params"]]
        sign = -1.0 if self.maximize else 1.0
        rest.sort(key=lambda row: (sign * float(row["interval"]["estimate"]), row["rank"]))
        return [self.winner, *rest]

    def winner_trial(self) -> int:
        """The Optuna number of the winner's lowest-repeat run (repeat 0: the spec's seed)."""
        return int(self.winner["trials"][0])

    def to_dict(self) -> dict[str, Any]:
        """The API's form: what a dashboard needs to draw mean ± CI per configuration."""
        return {
            "stage": self.stage,
            "pick": self.pick,
            "metric": self.metric,
            "maximize": self.maximize,
            "winner": self.winner,
            "configurations": self.ranked(),
            "tied": self.tied,
            "baseline": self.baseline,
            "vs_baseline": self.vs_baseline,
        }


def confirmed_best(stages: Iterable[StageRecord]) -> Confirmed | None:
    """The last COMPLETED confirm stage's pick; None when the sweep has none."""
    found = None
    for stage in stages:
        data = (stage.summary or {}).get(SUMMARY_KEY)
        if stage.state is SweepState.COMPLETED and data and data.get("winner"):
            found = _confirmed(stage.name, data)
    return found


def _confirmed(stage: str, data: dict[str, Any]) -> Confirmed:
    return Confirmed(
        stage=stage,
        pick=str(data.get("pick", "mean")),
        metric=str(data.get("metric", "")),
        maximize=bool(data.get("maximize")),
        winner=data["winner"],
        configurations=list(data.get("configurations") or []),
        tied=list(data.get("tied") or []),
        baseline=data.get("baseline"),
        vs_baseline=data.get("vs_baseline"),
    )


def mean_ci(row: dict[str, Any], plus: str = "±") -> str:
    """Mean ± half-width with the interval, e.g. `0.8412 ± 0.0123 (95% CI 0.8289..0.8535,
    n=5)`; one seed has no interval. `plus`: "+-" where the text must stay ASCII (an
    exported YAML's description)."""
    interval = row.get("interval") or {}
    mean, low, high = interval.get("estimate"), interval.get("low"), interval.get("high")
    if mean is None:
        return "-"
    n = int(interval.get("n") or 0)
    if n < 2 or low is None or high is None:
        return f"{mean:.4f} (n={n}, no seed interval)"
    half = (high - low) / 2.0
    confidence = round(100 * float(interval.get("confidence") or 0.95))
    return f"{mean:.4f} {plus} {half:.4f} ({confidence}% CI {low:.4f}..{high:.4f}, n={n})"


def winner_text(confirmed: Confirmed, describe: Any) -> str:
    """The pick with its interval; on a tie, first that the top configurations cannot be
    told apart, naming them, and then the pick, which still carries its interval: a tie
    says how wide the noise is, and the interval is what shows it."""
    winner = confirmed.winner
    picked = f"{describe(winner['params'])}  {confirmed.metric} {mean_ci(winner)}"
    if confirmed.ties:
        return tie_text(confirmed, describe) + f" (picked: {picked})"
    return f"confirmed best (stage {confirmed.stage}, pick {confirmed.pick}): {picked}"


def tie_text(confirmed: Confirmed, describe: Any) -> str:
    """`the top configurations cannot be told apart: a; b`, `describe` naming each."""
    names = [describe(confirmed.winner["params"]), *(describe(p) for p in confirmed.tied)]
    return "the top configurations cannot be told apart: " + "; ".join(names)
