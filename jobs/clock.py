"""The jobs' time: the job context's clock (`ctx["clock"]`, set by tests to drive a simulated
clock), else the wall clock."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any


def _wall_clock() -> datetime:
    return datetime.now(UTC)


def job_now(ctx: dict[str, Any]) -> datetime:
    clock: Callable[[], datetime] = ctx.get("clock", _wall_clock)
    return clock()
