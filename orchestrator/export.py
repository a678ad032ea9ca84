"""`sweepctl export`: the best trials of a sweep as something to run or read elsewhere.

The exported spec is the sweep's own spec with the trial's parameters applied through the
same override routing the sweep used, so `sweepctl trial` on it reproduces the trial
rather than an approximation rebuilt from the trial's stored config.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any, Literal, get_args

import yaml

from sweepctl.orchestrator.confirmed import Confirmed, confirmed_best, mean_ci, tie_text
from sweepctl.orchestrator.sweep_report import best_trials, compact_params, warnings_of
from sweepctl.spec.errors import UsageError
from sweepctl.spec.models import EXTRA_TRAINING_KEYS, SWEEP_NAME, SweepSpec, spec_to_dict
from sweepctl.spec.overrides import apply_overrides
from sweepctl.storage import Store, TrialRecord

ExportFormat = Literal["yaml", "json", "hf-args"]
# Plan keys: an exported spec describes one trial, not a sweep.
SWEEP_ONLY_KEYS = ("stages", "resources", "pruning", "search_space")
METRIC_COLUMNS = ("accuracy", "f1", "precision", "recall", "eval_loss")
_MAX_NAME = 100


def _ranked(store: Store, name: str, top: int) -> list[TrialRecord]:
    trials = best_trials(store, name, top)
    if not trials:
        raise UsageError(f"sweep {name!r} has no completed trial to export")
    return trials


def exported_name(sweep: str, rank: int) -> str:
    """Trimmed so the suffix never pushes the name past the spec's 100-character limit."""
    suffix = "-best" if rank == 1 else f"-best-{rank}"
    base = sweep[: _MAX_NAME - len(suffix)]
    return base + suffix if SWEEP_NAME.match(base + suffix) else f"sweep{suffix}"


def _spec_for(
    stored: dict[str, Any], trial: TrialRecord, rank: int, row: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The sweep's spec (its own seed) with the trial's values; `row`: the trial's
    configuration as a confirm stage measured it over its seeds."""
    spec = apply_overrides(SweepSpec.model_validate(stored), trial.params)
    data = spec_to_dict(spec)
    for key in SWEEP_ONLY_KEYS:
        data.pop(key, None)
    metric = spec.objective.metric
    data["name"] = exported_name(trial.sweep_name, rank)
    data["description"] = (
        f"reproduces trial {trial.id} (#{trial.number}, stage {trial.stage or '-'}) of sweep "
        f"'{trial.sweep_name}': {metric} = {trial.objective:.6g}"
    )
    if row is not None:
        data["description"] += f"; over {row['n']} seeds {metric} {mean_ci(row, '+-')}"
    if reason := _degenerate(trial):
        data["description"] += f"; degenerate: {reason}"
    return data


def _degenerate(trial: TrialRecord) -> str | None:
    """Why the trial learnt nothing (workers.noise), or None."""
    return (trial.metrics or {}).get("degenerate")


Best = tuple[TrialRecord, dict[str, Any], dict[str, Any] | None]


def _best_specs(store: Store, name: str, top: int) -> tuple[list[Best], Confirmed | None]:
    """Best first: the confirm stage's pick and its other configurations when the sweep
    has a finished confirm stage, else the best single trials."""
    stored = store.sweep_spec(name)
    confirmed = confirmed_best(store.sweep_row(name).stages)
    if confirmed is None:
        trials = _ranked(store, name, top)
        return [(t, _spec_for(stored, t, rank), None) for rank, t in enumerate(trials, 1)], None
    best: list[Best] = []
    for rank, row in enumerate(confirmed.ranked()[:top], start=1):
        trial = store.trial_by_optuna_number(name, int(row["trials"][0]))
        if trial is None:
            raise UsageError(f"sweep {name!r}: the stored run of a confirmed configuration is gone")
        best.append((trial, _spec_for(stored, trial, rank, row), row))
    return best, confirmed


def confirmation_note(confirmed: Confirmed | None) -> str | None:
    """One line for a sweep whose confirm stage could not separate its top configurations
    (None otherwise): the export names them rather than pretend one is better."""
    if confirmed is None or not confirmed.ties:
        return None
    return f"confirm stage '{confirmed.stage}': " + tie_text(confirmed, compact_params)


def export_spec(store: Store, name: str, top: int = 1) -> list[dict[str, Any]]:
    """Runnable specs, best first; keys stay in spec order so the YAML reads like a spec."""
    return [spec for _, spec, _ in _best_specs(store, name, top)[0]]


def hyperparameters(spec: dict[str, Any]) -> dict[str, Any]:
    """The sections a search-space name can land in (see overrides.SECTION_OF_KIND)."""
    return {
        "training": dict(spec.get("training") or {}),
        "model_args": dict(spec.get("model_args") or {}),
        "max_length": (spec.get("dataset") or {}).get("max_length"),
    }


def hf_training_args(spec: dict[str, Any]) -> dict[str, Any]:
    """Early stopping is a Trainer callback in sweepctl, not a TrainingArguments field."""
    training = spec.get("training") or {}
    return {k: v for k, v in training.items() if k not in EXTRA_TRAINING_KEYS}


def _summary(best: Best, confirmed: Confirmed | None, warnings: list[str]) -> dict[str, Any]:
    trial, spec, row = best
    summary = {
        "sweep": trial.sweep_name,
        "trial_id": trial.id,
        "metric": spec["objective"]["metric"],
        "objective": trial.objective,
        "params": dict(trial.params),
        "config": hyperparameters(spec),
        "degenerate": _degenerate(trial),
        "warnings": warnings,  # the sweep's (orchestrator.diagnosis), always a list
    }
    if confirmed is not None and row is not None:
        summary["confirmed"] = {
            "stage": confirmed.stage,
            "pick": confirmed.pick,
            "interval": row["interval"],
            "winner": row is confirmed.winner,
            "tied": confirmed.tied if row is confirmed.winner else [],
            "note": confirmation_note(confirmed),
        }
    return summary


def export_payload(store: Store, name: str, fmt: ExportFormat, top: int = 1) -> str:
    """One string ready to print or write; lists only when more than one trial is asked.
    The sweep's warnings travel with it (YAML: `# warning:` comments above the spec; JSON:
    `warnings`), so a configuration from a sweep that learnt nothing is not taken for an
    answer elsewhere."""
    if fmt not in get_args(ExportFormat):
        raise UsageError(f"unknown export format {fmt!r}; expected yaml, json or hf-args")
    best, confirmed = _best_specs(store, name, top)
    if fmt == "yaml":
        notes = [confirmation_note(confirmed), *(f"warning: {w}" for w in warnings_of(store, name))]
        text = yaml.safe_dump_all([spec for _, spec, _ in best], sort_keys=False)
        return "".join(f"# {note}\n" for note in notes if note) + text
    if fmt == "json":
        warnings = warnings_of(store, name)
        items: list[Any] = [_summary(item, confirmed, warnings) for item in best]
    else:
        items = [hf_training_args(spec) for _, spec, _ in best]
    return json.dumps(items[0] if top <= 1 else items, indent=2, default=str) + "\n"


# --- CSV ------------------------------------------------------------------------------


def _param_names(store: Store, name: str, trials: list[TrialRecord]) -> list[str]:
    """Search-space order first (how users think of the sweep), then any extra overrides."""
    names = list(store.sweep_spec(name).get("search_space") or {})
    for trial in trials:
        names.extend(key for key in trial.params if key not in names)
    return names


def _duration(trial: TrialRecord) -> float | None:
    if trial.started_at is None or trial.finished_at is None:
        return None
    return round((trial.finished_at - trial.started_at).total_seconds(), 3)


def _csv_row(trial: TrialRecord, params: list[str]) -> list[Any]:
    metrics = trial.metrics or {}
    return [
        trial.id,
        trial.number,
        trial.optuna_trial_number,
        trial.stage,
        trial.state.name,
        *(trial.params.get(p) for p in params),
        trial.objective,
        *(metrics.get(m) for m in METRIC_COLUMNS),
        len(trial.evaluations),
        _duration(trial),
        trial.error,
    ]


def write_trials_csv(store: Store, name: str, path: str | Path) -> int:
    """Every trial, failed ones included, so the file explains the whole sweep; returns the
    number of rows written."""
    text, count = trials_csv(store, name)
    Path(path).write_text(text, encoding="utf-8", newline="")
    return count


def trials_csv(store: Store, name: str) -> tuple[str, int]:
    """The CSV text of `write_trials_csv` (the dashboard serves it as a download)."""
    trials = store.list_trials(name)
    params = _param_names(store, name, trials)  # raises StoreError for an unknown sweep
    header = [
        "trial_id",
        "number",
        "optuna_trial_number",
        "stage",
        "state",
        *(f"param.{p}" for p in params),
        "objective",
        *METRIC_COLUMNS,
        "evaluations",
        "duration_s",
        "error",
    ]
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(_csv_row(trial, params) for trial in trials)
    return buffer.getvalue(), len(trials)
