"""Auto-recharge's and renewal notices' work in the jobs worker.

- The recharge listener (started with the worker): a LISTEN on `credit_ledger_recharge` that runs
  a recharge pass as soon as an AUTO_RECHARGE crossing is journaled.
- `sweep_recharges` (every minute): the same pass, for crossings a wake-up missed and recharges
  left started (`ledger.payments.auto_recharge`).
- `send_renewal_notices` (hourly): the RENEWAL_NOTICE events due (`ledger.payments.renewal_notices`).

Each is idempotent and safe with several workers (row locks and unique keys). Within one worker the
listener's passes and the cron's take turns (`recharge_pass_lock`, made at start-up), so the worker's
pool (`job_pool_size_max`) holds one pass's `recharge_concurrency` crossings and the other crons. `now` is the job
context's clock (`ctx["clock"]`, the wall clock unless a test gives its own). Without a Stripe key
(`ctx["gateway"]` None) nothing can be charged: the recharge work is skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from jobs.clock import job_now
from jobs.context import payment_context
from ledger import constants
from ledger.payments import renewal_notices
from ledger.payments.auto_recharge import recharge_pass
from ledger.payments.recharge_listener import RechargeListener
from ledger.store.catalog_versions import load_catalog

log = logging.getLogger(__name__)


async def sweep_recharges(ctx: dict[str, Any]) -> int:
    """Handle the crossings no wake-up took and resume recharges left started; how many moved."""
    if ctx.get("gateway") is None:
        return 0
    lock: asyncio.Lock | None = ctx.get("recharge_pass_lock")
    async with lock or contextlib.nullcontext():
        payments = payment_context(ctx)  # the clock read once the turn has come
        assert payments is not None
        handled = await recharge_pass(payments, await load_catalog(payments.pool))
    if handled:
        log.info("recharge sweep at %s: %d recharge(s)", payments.now.isoformat(), handled)
    return handled


async def start_recharge_listener(ctx: dict[str, Any]) -> None:
    """Listen for crossings (in the worker's start-up; `stop_recharge_listener` in its shutdown)."""
    if ctx.get("gateway") is None:
        log.info("no Stripe key: auto-recharge is not listening")
        return
    # Shared by the jobs' contexts (arq copies this one, shallowly, for each job).
    ctx["recharge_pass_lock"] = asyncio.Lock()
    listener = RechargeListener(ctx["settings"].database_url, lambda: sweep_recharges(ctx))
    await listener.start()
    ctx["recharge_listener"] = listener


async def stop_recharge_listener(ctx: dict[str, Any]) -> None:
    listener: RechargeListener | None = ctx.pop("recharge_listener", None)
    if listener is not None:
        await listener.stop()


async def send_renewal_notices(ctx: dict[str, Any]) -> int:
    """Send the renewal notices due now (each once per period); how many were sent."""
    now = job_now(ctx)
    sent = await renewal_notices.send_renewal_notices(
        ctx["pool"], ctx["effects"], now, constants.renewal_notices_per_run_max
    )
    if sent:
        log.info("renewal notices at %s: %d sent", now.isoformat(), sent)
    return sent
