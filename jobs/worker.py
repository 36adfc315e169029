"""The arq worker: its settings and cron schedule."""

from __future__ import annotations

from typing import Any

from arq import cron
from arq.connections import RedisSettings
from arq.worker import Worker

from jobs.ledger_health import record_ledger_health
from ledger.runtime.settings import Settings

job_timeout_s = 60
CRON_JOBS = [cron(record_ledger_health, second={0, 15, 30, 45}, run_at_startup=True)]


def create_worker(settings: Settings) -> Worker:
    async def on_startup(ctx: dict[str, Any]) -> None:
        ctx["settings"] = settings

    return Worker(
        functions=[],
        cron_jobs=CRON_JOBS,
        redis_settings=RedisSettings.from_dsn(settings.redis_url),
        on_startup=on_startup,
        job_timeout=job_timeout_s,
        handle_signals=True,
    )


class WorkerSettings:
    """For `arq jobs.worker.WorkerSettings` with REDIS_URL set (the CLI's `jobs` does the same)."""

    cron_jobs = CRON_JOBS
    job_timeout = job_timeout_s
    redis_settings = RedisSettings.from_dsn(Settings.from_environment().redis_url or "redis://localhost:6379")

    @staticmethod
    async def on_startup(ctx: dict[str, Any]) -> None:
        ctx["settings"] = Settings.from_environment()
