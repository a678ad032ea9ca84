"""Data endpoints behind the dashboard's tables and charts (being built)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api/v1", tags=["dashboard"])
