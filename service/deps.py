"""Request-scoped access to what the app was built with, for every router."""

from __future__ import annotations

from fastapi import HTTPException, Request

from sweepctl.service.settings import ServeSettings
from sweepctl.storage import Store, StoreError, SweepRecord


def store_of(request: Request) -> Store:
    return request.app.state.store


def settings_of(request: Request) -> ServeSettings:
    return request.app.state.settings


def sweep_or_404(store: Store, sweep_id: int) -> SweepRecord:
    try:
        return store.get_sweep_by_id(sweep_id)
    except StoreError as exc:
        raise HTTPException(status_code=404, detail=f"sweep {sweep_id} not found") from exc
