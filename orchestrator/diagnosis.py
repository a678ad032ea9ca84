"""A sweep that learnt nothing says so: one-line warnings read from the store.

Why: on real GLUE MRPC with 400 training rows every trial of a seed-003-shaped sweep
predicted the majority class, OFAT ranked seven parameters by an impact of 0.0000, a grid
searched the "top 2" of that tie, and the sweep reported the majority rate as its best.
Each trial was flagged degenerate (workers.noise), but nothing said it of the sweep. So
`status`, `export`, `launch`'s last lines and the API's overview carry `sweep_warnings`:

    stage NAME: no parameter moved the objective      an OFAT stage whose summary says
                                                      `no_signal` (strategies.ofat)
    stage NAME: top k taken from stage S, ...         a `top: k` read from such a stage
                                                      (proposals.tie_pick_warning)
    every completed trial is degenerate               each COMPLETED trial's metrics
                                                      carry `degenerate`
    no trial beats the baseline by more than its noise
                                                      the best trial's gain over the
                                                      baseline configuration's runs is
                                                      within their evaluation intervals
                                                      (in quadrature) or the baseline's
                                                      seed spread; a confirm stage's
                                                      paired test answers instead when it
                                                      reran the baseline

and, when either of the last two holds, the likely causes the stored trials show (the
`*_cause` rules below, each a pure function of a few numbers). The ranges they hold a
sweep against are those of BERT-family fine-tuning (BERT, RoBERTa, MiniLM, DistilBERT):

    learning rate  1e-5 to 1e-4   the BERT paper's grid is 2e-5..5e-5 and common recipes
                                  stay within 1e-5..1e-4; below, a few hundred steps do not
                                  move a new classification head; above, fine-tuning
                                  diverges or collapses onto one class
    epochs         1 to 10        the BERT paper uses 2-4; less than one pass leaves rows
                                  unseen, more than ten mostly memorises a small set
    steps          >= 100         MRPC with 400 rows at batch 16 for 3 epochs (75 steps)
                                  stayed at the majority rate; a head needs a few hundred
                                  updates at these learning rates
    one class      >= 1.2 / k     of the validation labels (k classes): MRPC's 68% of
                                  class 1 is flagged, SST-2's 51% is not

A rule is a cause only when every completed trial is outside its range: if the sweep
also tried values inside it, that setting alone does not explain the result. Every read
is an aggregate or a few rows (storage.outcome_views), so the warnings cost the same for
10 trials and 10,000.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sweepctl.orchestrator.confirmed import Confirmed, confirmed_best
from sweepctl.storage import StageRecord, Store
from sweepctl.storage.outcome_views import OutcomeCounts, TrainingExtent, TrialNoise

LEARNING_RATE_RANGE = (1e-5, 1e-4)
EPOCH_RANGE = (1.0, 10.0)
MIN_STEPS = 100
DOMINANT_FACTOR = 1.2  # a class at 1.2x its balanced share (1/k) dominates
NO_SIGNAL = "no parameter moved the objective (every move is within noise)"
CAUSE = "likely cause: "


class SweepLike(Protocol):
    @property
    def id(self) -> int: ...

    @property
    def stages(self) -> list[StageRecord]: ...


def sweep_warnings(store: Store, sweep: SweepLike, metric: str, maximize: bool) -> list[str]:
    """Every warning about `sweep`, stage warnings first; empty for a healthy sweep."""
    warnings = stage_warnings(sweep.stages)
    counts = store.outcome_counts(sweep.id)
    if not counts.completed:
        return warnings
    best = store.best_run(sweep.id, maximize)
    flagged = degenerate_line(counts)
    verdict = baseline_verdict(store, sweep, best, metric, maximize, counts.completed)
    warnings += [line for line in (flagged, verdict) if line is not None]
    if verdict is not None or counts.degenerate == counts.completed:
        causes = likely_causes(store.training_extent(sweep.id), best)
        warnings += [CAUSE + cause for cause in causes]
    return warnings


def stage_warnings(stages: Iterable[StageRecord]) -> list[str]:
    """What the stage summaries say: an OFAT stage without signal (its `ofat.no_signal`),
    and any stage's own `warnings` (a `top: k` taken from such a stage)."""
    found = []
    for stage in stages:
        summary = stage.summary or {}
        if (summary.get("ofat") or {}).get("no_signal"):
            found.append(f"stage {stage.name}: {NO_SIGNAL}")
        found += [f"stage {stage.name}: {line}" for line in summary.get("warnings") or []]
    return found


def degenerate_line(counts: OutcomeCounts) -> str | None:
    """All or some COMPLETED trials flagged degenerate, with the first one's reason."""
    if not counts.degenerate:
        return None
    example = ""
    if counts.example is not None:
        example = f", e.g. trial {counts.example[0]}: {counts.example[1]}"
    if counts.degenerate == counts.completed:
        share = f"{counts.degenerate} of {counts.completed}"
        return f"every completed trial is degenerate ({share}){example}"
    return f"{counts.degenerate} of {counts.completed} completed trials are degenerate{example}"


# --- the baseline ------------------------------------------------------------------------


@dataclass(frozen=True)
class BaselineScore:
    """The baseline configuration's runs: mean objective, seed spread (n >= 2) and the
    evaluation noise of the mean (the runs' interval half-widths, mean / sqrt(n))."""

    mean: float
    n: int
    std: float | None = None
    half_width: float | None = None


def baseline_score(runs: Sequence[TrialNoise]) -> BaselineScore | None:
    if not runs:
        return None
    values = [run.objective for run in runs]
    mean = sum(values) / len(values)
    std = None
    if len(values) > 1:
        std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
    widths = [run.half_width for run in runs]
    known = [w for w in widths if w is not None]
    half = sum(known) / len(known) / math.sqrt(len(known)) if len(known) == len(widths) else None
    return BaselineScore(mean, len(values), std, half)


def noise_margin(best: TrialNoise, base: BaselineScore) -> float:
    """How far the best trial must clear the baseline: both evaluation intervals in
    quadrature (as OFAT compares a move with the baseline), or the baseline's seed spread
    when that is wider; 0 when neither is known (a strict improvement then counts)."""
    widths = [w for w in (best.half_width, base.half_width) if w is not None]
    evaluation = math.sqrt(sum(w * w for w in widths))
    return max(evaluation, base.std or 0.0)


def beats_baseline(best: TrialNoise, base: BaselineScore, maximize: bool) -> bool:
    gain = (best.objective - base.mean) * (1.0 if maximize else -1.0)
    return gain > noise_margin(best, base)


def baseline_verdict(
    store: Store,
    sweep: SweepLike,
    best: TrialNoise | None,
    metric: str,
    maximize: bool,
    completed: int,
) -> str | None:
    """The "no trial beats the baseline" line, or None when one does, no baseline ran, or
    nothing but the baseline has finished yet (`completed` trials in all). A confirm stage
    that reran the baseline answers with its paired test over seeds."""
    confirmed = confirmed_best(sweep.stages)
    if confirmed is not None and confirmed.baseline is not None:
        return confirmed_verdict(confirmed)
    base_values = baseline_values(store.search_basis(sweep.id))
    if best is None or not base_values:
        return None
    runs = store.runs_with_params(sweep.id, base_values)
    base = baseline_score(runs)
    if base is None or len(runs) >= completed or beats_baseline(best, base, maximize):
        return None
    gain = best.objective - base.mean
    return (
        f"no trial beats the baseline by more than its noise: best {metric} "
        f"{best.objective:.4f} (trial {best.id}) vs baseline {base.mean:.4f} (n={base.n}) "
        f"is {gain:+.4f}, within the noise {noise_margin(best, base):.4f}"
    )


def confirmed_verdict(confirmed: Confirmed) -> str | None:
    """None when the confirm stage's winner beats the rerun baseline over paired seeds."""
    if confirmed.winner.get("is_baseline"):
        return "no trial beats the baseline: the confirm stage picked the baseline itself"
    test = confirmed.vs_baseline
    if test is None:
        return None
    ahead = (test["mean_difference"] > 0.0) == confirmed.maximize
    if test.get("distinguishable") and ahead:
        return None
    return (
        f"no trial beats the baseline: confirm stage {confirmed.stage}'s winner - baseline "
        f"is {test['mean_difference']:+.4f} [{test['low']:+.4f}, {test['high']:+.4f}] "
        f"over {test['n']} seeds"
    )


def baseline_values(basis: dict[str, Any]) -> dict[str, Any] | None:
    """Each searched parameter's value in the stored spec, as spec.baseline reads it
    (training, then model_args, then dataset.max_length; a TrainingArguments field the
    spec leaves out has HF's default), without validating the spec: `status` must not
    import pydantic's models. None when a value cannot be known."""
    space = basis.get("search_space") or {}
    if not space:
        return None
    sections = [basis.get(key) or {} for key in ("training", "model_args")]
    values: dict[str, Any] = {}
    for name in space:
        found = next((section[name] for section in sections if name in section), _MISSING)
        if found is _MISSING and name == "max_length":
            found = (basis.get("dataset") or {}).get(name, _MISSING)
        if found is _MISSING:
            found = _training_default(name)
        if found is _MISSING:
            return None
        values[name] = found
    return values


_MISSING = object()


def _training_default(name: str) -> Any:
    from sweepctl.spec.training_fields import (
        NO_DEFAULT,
        training_argument_default,
        training_argument_names,
    )

    if name not in training_argument_names():
        return _MISSING
    default = training_argument_default(name)
    return _MISSING if default is NO_DEFAULT else default


# --- the likely causes -------------------------------------------------------------------


def likely_causes(extent: TrainingExtent, best: TrialNoise | None) -> list[str]:
    counts = best.label_counts if best is not None else None
    names = best.label_names if best is not None else None
    found = (
        few_steps_cause(extent),
        learning_rate_cause(extent.learning_rate),
        epochs_cause(extent.epochs),
        dominant_class_cause(counts, names),
    )
    return [cause for cause in found if cause is not None]


def few_steps_cause(extent: TrainingExtent) -> str | None:
    """Even the longest run made fewer than MIN_STEPS optimizer steps."""
    steps = extent.max_steps_bound
    if steps is None or steps >= MIN_STEPS or extent.train_rows is None:
        return None
    batch = f"batch size {extent.batch_size}"
    if extent.accumulation > 1:
        batch += f" x {extent.accumulation} accumulated"
    epochs = extent.epochs[1] if extent.epochs is not None else None
    spent = f" and at most {epochs:g} epoch(s)" if epochs is not None else ""
    return (
        f"too few training rows for the number of steps: {extent.train_rows} training rows "
        f"at {batch}{spent} give at most {steps} optimizer step(s) per trial; fine-tuning "
        f"usually needs {MIN_STEPS} or more"
    )


def learning_rate_cause(span: tuple[float, float] | None) -> str | None:
    side = _outside(span, LEARNING_RATE_RANGE)
    if span is None or side is None:
        return None
    low, high = LEARNING_RATE_RANGE
    return (
        f"learning rate {_span(span)} is {side} the usual range for fine-tuning BERT-family "
        f"models ({low:.0e} to {high:.0e}) in every trial"
    )


def epochs_cause(span: tuple[float, float] | None) -> str | None:
    side = _outside(span, EPOCH_RANGE)
    if span is None or side is None:
        return None
    low, high = EPOCH_RANGE
    return f"epochs {_span(span)} is {side} the usual range ({low:g} to {high:g}) in every trial"


def dominant_class_cause(
    counts: Sequence[int] | None, names: Sequence[str] | None = None
) -> str | None:
    """The validation labels' largest class at DOMINANT_FACTOR times its balanced share."""
    if not counts or len(counts) < 2 or sum(counts) <= 0:
        return None
    total = sum(counts)
    top = max(range(len(counts)), key=lambda i: counts[i])
    share = counts[top] / total
    if share < DOMINANT_FACTOR / len(counts):
        return None
    label = (
        f"{top} ({names[top]})"
        if names and top < len(names) and names[top] != str(top)
        else str(top)
    )
    return (
        f"one class dominates the validation labels: class {label} is {share:.1%} of "
        f"{total} rows, so always predicting it scores accuracy {share:.3f}"
    )


def _outside(span: tuple[float, float] | None, usual: tuple[float, float]) -> str | None:
    """'below' or 'above' when every value of `span` lies on that side of `usual`."""
    if span is None:
        return None
    if span[1] < usual[0]:
        return "below"
    if span[0] > usual[1]:
        return "above"
    return None


def _span(span: tuple[float, float]) -> str:
    return f"{span[0]:g}" if span[0] == span[1] else f"{span[0]:g}..{span[1]:g}"
