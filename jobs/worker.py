"""The arq worker: its resources and cron schedule. Jobs send ledger commands; they never write
balances."""

from __future__ import annotations

from typing import Any

from arq import cron
from arq.connections import RedisSettings
from arq.worker import Worker

from jobs.expiry import expire_credit_lots
from jobs.invoices import issue_invoices, run_dunning
from jobs.ledger_health import record_ledger_health
from jobs.payments import reconcile_stripe
from jobs.recharge import send_renewal_notices, start_recharge_listener, stop_recharge_listener, sweep_recharges
from jobs.turnover import advance_turnover
from ledger import constants
from ledger.payments.gateway import gateway_from
from ledger.runtime.settings import Settings
from ledger.store.pool import create_pool
from ledger.stream.connection import redis_client
from ledger.stream.mailbox import Mailbox
from ledger.stream.pubsub import PubSubHub
from ledger.subscriptions.effects import LedgerEffects

CRON_JOBS = [
    cron(record_ledger_health, second={0, 15, 30, 45}, run_at_startup=True),
    cron(expire_credit_lots, second=0, run_at_startup=True),
    # Not on the minute's start, where expiry runs: each finds its own work.
    cron(advance_turnover, second=30, run_at_startup=True),
    # Payments: each finds its own work by time and key, so a run that overlaps another adds nothing.
    cron(reconcile_stripe, second={10, 40}, run_at_startup=True),
    cron(sweep_recharges, second=20, run_at_startup=True),
    cron(issue_invoices, second=45, run_at_startup=True),
    cron(run_dunning, second=50, run_at_startup=True),
    cron(send_renewal_notices, minute=5, second=5, run_at_startup=True),
]


async def startup(ctx: dict[str, Any], settings: Settings) -> None:
    ctx["settings"] = settings
    ctx["pool"] = await create_pool(settings.database_url, size_max=constants.job_pool_size_max)
    # The ledger's Redis (a Redis Cluster, perhaps), apart from arq's queue (`ctx["redis"]`).
    ctx["ledger_redis"] = ledger_redis = redis_client(settings)
    # A hub so that turnover can wait for its commands' results before recording its facts.
    ctx["hub"] = hub = PubSubHub(ledger_redis)
    await hub.start()
    ctx["mailbox"] = mailbox = Mailbox(ledger_redis, settings.partition_count, hub)
    await mailbox.start()
    ctx["effects"] = LedgerEffects(mailbox)
    ctx["gateway"] = gateway_from(settings)  # None: no Stripe key, payments jobs do nothing
    # Auto-recharge wakes on its crossings' NOTIFY rather than waiting for the sweep.
    await start_recharge_listener(ctx)


async def shutdown(ctx: dict[str, Any]) -> None:
    await stop_recharge_listener(ctx)
    await ctx["hub"].stop()
    await ctx["ledger_redis"].aclose()
    await ctx["pool"].close()


def create_worker(settings: Settings) -> Worker:
    async def on_startup(ctx: dict[str, Any]) -> None:
        await startup(ctx, settings)

    return Worker(
        functions=[],
        cron_jobs=CRON_JOBS,
        # arq runs on a plain Redis only: its own URL, else the ledger's.
        redis_settings=RedisSettings.from_dsn(settings.arq_redis_url),
        on_startup=on_startup,
        on_shutdown=shutdown,
        job_timeout=constants.job_timeout_s,
        handle_signals=True,
    )


class WorkerSettings:
    """For `arq jobs.worker.WorkerSettings` with the URLs set (the CLI's `jobs` does the same)."""

    cron_jobs = CRON_JOBS
    job_timeout = constants.job_timeout_s
    on_shutdown = shutdown
    redis_settings = RedisSettings.from_dsn(Settings.from_environment().arq_redis_url or "redis://localhost:6379")

    @staticmethod
    async def on_startup(ctx: dict[str, Any]) -> None:
        await startup(ctx, Settings.from_environment())
