"""Period turnover: every minute, advance the subscriptions with billing facts due (their periods'
grants, closes, charges, trial ends, pending plan changes and ends; `ledger.subscriptions.turnover`).

The job only finds what is due and sends commands; the organizations' actors apply them. Any number
of jobs workers may run it at once: each subscription is advanced under its row lock and each fact
is recorded once, so a run that overlaps another, a retry or a crashed run's successor add nothing
twice. `now` is the job context's clock (`ctx["clock"]`, the wall clock unless a test gives its own),
and the catalog is read afresh each run, so a version loaded a minute ago prices the next period.
"""

from __future__ import annotations

import logging
from typing import Any

from jobs.clock import job_now
from ledger import constants
from ledger.store.catalog_versions import load_catalog
from ledger.subscriptions.turnover import advance_due

log = logging.getLogger(__name__)


async def advance_turnover(ctx: dict[str, Any]) -> int:
    """Advance what is due by now; returns how many facts were recorded."""
    now = job_now(ctx)
    pool = ctx["pool"]
    catalog = await load_catalog(pool)
    advances = await advance_due(pool, ctx["effects"], catalog, now, constants.turnover_subscriptions_per_run_max)
    recorded = sum(len(advance.recorded) for advance in advances)
    if recorded:
        log.info("turnover at %s: %d fact(s) for %d subscription(s)", now.isoformat(), recorded, len(advances))
    return recorded
