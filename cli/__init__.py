"""sweepctl: staged hyperparameter sweeps for fine-tuning transformer text classifiers.

The package is built in layers; each imports only the ones below it (checked by
`lint-imports`, see pyproject.toml):

    sweepctl (this folder, cli/)     the command line
    sweepctl.service                 `sweepctl serve`: REST API, dashboard, controller
    sweepctl.orchestrator            stages, strategies, the Optuna study, Ray placement
    sweepctl.workers                 one trial: data, model, Trainer, per-epoch rows
    sweepctl.storage                 the SQL store every process shares
    sweepctl.spec                    the YAML spec: models, loading, overrides, errors

Importing this package imports nothing else, so `sweepctl --help` stays instant.
"""

from __future__ import annotations

__version__ = "0.2.0"
