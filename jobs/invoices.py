"""Invoices' periodic work (being built: issue 15, invoices helper)."""

from __future__ import annotations

from typing import Any


async def issue_invoices(ctx: dict[str, Any]) -> int:
    return 0


async def run_dunning(ctx: dict[str, Any]) -> int:
    return 0
