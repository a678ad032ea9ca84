"""One trial on one worker: data, model, Trainer, and the per-epoch rows it stores.

Workers import the spec and the store, never the orchestrator: a Ray node needs only
this package and the layers below it to run a trial.
"""
