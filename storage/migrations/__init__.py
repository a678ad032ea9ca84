"""Alembic migrations of the store, run from code by `sweepctl.storage.migrate`."""
