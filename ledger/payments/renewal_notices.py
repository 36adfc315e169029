"""Renewal notices: once per billing period, `renewal_notice_days` before it ends, a subscription
that will renew (live, not cancelling at the period's end: auto-renewal is on by default) gets a
RENEWAL_NOTICE billing alert event on the organization's alert feed.

Exactly once per period: the alert's command is keyed `period_key(subscription, period start,
"renewal_notice")`, so the actor journals it once however many runs send it, and the period fact
(`period_facts`, reason 'renewal_notice') recorded after its result makes later runs skip it. A run
whose command was not answered leaves no fact, and the next hourly run sends it again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

import asyncpg

from ledger import constants
from ledger.billing.calendar import Calendar, Period, zone
from ledger.billing.catalog import Interval
from ledger.billing.keys import period_key
from ledger.core.billing_commands import RaiseBillingAlert
from ledger.core.commands import AlertKind
from ledger.core.entries import Status
from ledger.subscriptions.effects import RETRYABLE, Effects, LedgerEffect
from ledger.subscriptions.periods import PeriodFact, record_facts

log = logging.getLogger(__name__)

REASON = "renewal_notice"
_PAGE = 1_000
# Notices sent at once (each waits for its command's result).
_CONCURRENCY = 32

# Subscriptions that renew at their period's end, by id from `$1` (a page at a time).
_RENEWING = """
SELECT id, org_id, anchor, timezone, interval FROM subscriptions
WHERE status IN ('active', 'trialing') AND NOT cancel_at_period_end AND id > $1
ORDER BY id
LIMIT $2
"""
_NOTIFIED = """
SELECT subscription_id, period_start FROM period_facts
WHERE reason = 'renewal_notice' AND subscription_id = ANY($1::uuid[]) AND period_start = ANY($2::timestamptz[])
"""


@dataclass(frozen=True, slots=True)
class Renewal:
    subscription_id: UUID
    organization_id: UUID
    timezone: str
    period: Period  # the billing period that ends with the renewal

    @property
    def key(self) -> str:
        return period_key(self.subscription_id, self.period.start, REASON)

    @property
    def message(self) -> str:
        return f"renews on {self.period.end.astimezone(zone(self.timezone)).date().isoformat()}"


def due_renewal(row: asyncpg.Record, now: datetime, lead: timedelta) -> Renewal | None:
    """The subscription's renewal if its current billing period ends within `lead` of `now`."""
    calendar = Calendar.of(row["anchor"], row["timezone"], Interval(row["interval"]))
    period = calendar.period_at(now)
    if not now < period.end <= now + lead:
        return None
    return Renewal(row["id"], row["org_id"], row["timezone"], period)


async def _due(pool: asyncpg.Pool, now: datetime, limit: int) -> list[Renewal]:
    """Renewals within the notice's lead that have no notice yet, at most `limit`."""
    lead = timedelta(days=constants.renewal_notice_days)
    found: list[Renewal] = []
    after = UUID(int=0)
    while len(found) < limit:
        rows = await pool.fetch(_RENEWING, after, _PAGE)
        if not rows:
            break
        after = rows[-1]["id"]
        due = [renewal for row in rows if (renewal := due_renewal(row, now, lead)) is not None]
        if due:
            notified = await pool.fetch(_NOTIFIED, [r.subscription_id for r in due], [r.period.start for r in due])
            done = {(row["subscription_id"], row["period_start"]) for row in notified}
            found += [r for r in due if (r.subscription_id, r.period.start) not in done]
    return found[:limit]


async def _notify(pool: asyncpg.Pool, effects: Effects, renewal: Renewal, now: datetime) -> bool:
    alert = RaiseBillingAlert(AlertKind.RENEWAL_NOTICE, renewal.message)
    try:
        [reply] = await effects.apply(renewal.organization_id, [LedgerEffect(renewal.key, alert, now)])
    except RETRYABLE as error:
        log.warning("renewal notice %s not sent (next run): %s", renewal.key, error)
        return False
    if reply.result.status is Status.REJECTED:
        log.error("renewal notice %s refused: %s %s", renewal.key, reply.result.code, reply.result.message)
        return False
    fact = PeriodFact(
        subscription_id=renewal.subscription_id,
        organization_id=renewal.organization_id,
        period_start=renewal.period.start,
        period_end=renewal.period.end,
        reason=REASON,
        idempotency_key=renewal.key,
        transaction_id=reply.transaction_id,
    )
    async with pool.acquire() as connection:
        await record_facts(connection, [fact])
    return True


async def send_renewal_notices(pool: asyncpg.Pool, effects: Effects, now: datetime, limit: int) -> int:
    """Send the notices due at `now` (at most `limit`); how many were sent."""
    due = await _due(pool, now, limit)
    sent = 0
    for start in range(0, len(due), _CONCURRENCY):
        chunk: Sequence[Renewal] = due[start : start + _CONCURRENCY]
        results = await asyncio.gather(*(_notify(pool, effects, renewal, now) for renewal in chunk))
        sent += sum(results)
    return sent
