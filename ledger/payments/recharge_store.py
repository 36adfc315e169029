"""Auto-recharge in PostgreSQL: the settings per organization (`auto_recharge`) and one row per
crossing (`recharges`, keyed by the AUTO_RECHARGE alert event that started it).

Plain functions over a connection; the caller owns the transaction. The organization's lock
(`lock_organization`, taken by the settings' writer and by every recharge decision) serializes them,
so two crossings judged at once cannot both fit under the monthly cap that only one fits under, and
a crossing fired by the settings' own rule is decided on those settings.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from uuid import UUID

import asyncpg

from ledger.billing.auto_recharge import (
    COUNTED,
    COUNTED_PAYMENTS,
    HANDLED,
    RESOLVED,
    STALE,
    UNCHANGED,
    RechargeStatus,
)
from ledger.core.money import MicroCredits
from ledger.store.pool import Connection


@dataclass(frozen=True, slots=True)
class AutoRecharge:
    organization_id: UUID
    enabled: bool
    threshold: MicroCredits
    pack_key: str
    monthly_cap: int  # minor units of `currency`
    currency: str
    updated_at: datetime | None = None  # set by the store


@dataclass(frozen=True, slots=True)
class Recharge:
    alert_event_id: UUID
    organization_id: UUID
    month: date
    status: RechargeStatus
    amount: int  # minor units; 0 when nothing was charged
    payment_id: UUID | None = None
    detail: str = ""
    created_at: datetime | None = None  # set by the store


@dataclass(frozen=True, slots=True)
class Crossing:
    """An AUTO_RECHARGE TRIGGERED alert event: one crossing below the threshold."""

    organization_id: UUID
    alert_event_id: UUID
    at: datetime


# Serializes an organization's settings writes with its recharge decisions, even before the settings
# row exists (a row inserted by an uncommitted transaction is invisible, so `FOR UPDATE` alone would
# not make a decision wait for the first settings being written).
_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended('auto_recharge:' || $1::uuid, 0))"
_UPSERT = """
INSERT INTO auto_recharge (org_id, enabled, threshold, pack_key, monthly_cap, currency, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, now())
ON CONFLICT (org_id) DO UPDATE SET enabled = excluded.enabled, threshold = excluded.threshold,
    pack_key = excluded.pack_key, monthly_cap = excluded.monthly_cap, currency = excluded.currency, updated_at = now()
RETURNING updated_at
"""
_SETTINGS = """
SELECT org_id, enabled, threshold, pack_key, monthly_cap, currency, updated_at FROM auto_recharge WHERE org_id = $1
"""
# A recharge counts by its own status or by its payment's (`recharge:<alert event>`): money taken or
# still being taken counts even when the row was marked failed.
_CHARGED = """
SELECT coalesce(sum(coalesce(p.amount, r.amount)), 0) FROM recharges r
LEFT JOIN payments p ON p.org_id = r.org_id AND p.request_key = 'recharge:' || r.alert_event_id::text
WHERE r.org_id = $1 AND r.month = $2 AND (r.status = ANY($3::text[]) OR p.status = ANY($4::text[]))
"""
# Whether a crossing is still open: no later event of its rule (within one batch, by the command's
# time: a replaced rule's RESOLVED written by the same command as the new crossing is not later),
# and young enough, on the database's clock that wrote `committed_at`. And whether a crossing fired
# by a settings write (`set_alert`: a new threshold, a re-enable) continues a fall already handled:
# an earlier crossing of the rule has a recharge, and no RESOLVED since came from anything but a
# settings write (a payment, a grant lifting the balance).
_CLOSED = """
SELECT e.committed_at < now() - $3::interval AS stale,
       EXISTS (SELECT 1 FROM alert_events l
               WHERE l.org_id = e.org_id AND l.alert_id = e.alert_id AND l.id <> e.id
                 AND (l.committed_at > e.committed_at
                      OR (l.committed_at = e.committed_at AND l.at > e.at))) AS later,
       (t.command_type = 'set_alert' AND EXISTS (
           SELECT 1 FROM alert_events p JOIN recharges r ON r.alert_event_id = p.id
           WHERE p.org_id = e.org_id AND p.alert_id = e.alert_id AND p.state = 'triggered' AND p.id <> e.id
             AND (p.committed_at, p.at) < (e.committed_at, e.at) AND r.status = ANY($4::text[])
             AND NOT EXISTS (
                 SELECT 1 FROM alert_events b
                 JOIN ledger_transactions bt ON bt.org_id = b.org_id AND bt.id = b.transaction_id
                 WHERE b.org_id = e.org_id AND b.alert_id = e.alert_id AND b.state = 'resolved'
                   AND (b.committed_at, b.at) > (p.committed_at, p.at)
                   AND (b.committed_at, b.at) <= (e.committed_at, e.at)
                   AND bt.command_type NOT IN ('set_alert', 'remove_alert')))) AS unchanged
FROM alert_events e JOIN ledger_transactions t ON t.org_id = e.org_id AND t.id = e.transaction_id
WHERE e.org_id = $1 AND e.id = $2
"""
_INSERT = """
INSERT INTO recharges (alert_event_id, org_id, month, amount, status, detail)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (alert_event_id, org_id) DO NOTHING
"""
# A final status is never changed back: a late answer (a replayed webhook) finds it settled.
_SET_STATUS = """
UPDATE recharges SET status = $2, payment_id = coalesce($3, payment_id), detail = $4, updated_at = now()
WHERE alert_event_id = $1 AND status = 'started'
"""
_RECHARGE = """
SELECT alert_event_id, org_id, month, status, amount, payment_id, detail, created_at FROM recharges
WHERE alert_event_id = $1
"""
_OF_ORG = """
SELECT alert_event_id, org_id, month, status, amount, payment_id, detail, created_at FROM recharges
WHERE org_id = $1 ORDER BY created_at DESC, alert_event_id LIMIT $2
"""
# Crossings no runner has taken yet, oldest first, within the look-back (the partial index keeps it
# small). Ages are measured on the database's clock, the one that wrote `committed_at`.
_UNHANDLED = """
SELECT e.org_id, e.id, e.committed_at FROM alert_events e
WHERE e.kind = 'auto_recharge' AND e.state = 'triggered' AND e.committed_at >= now() - $1::interval
  AND NOT EXISTS (SELECT 1 FROM recharges r WHERE r.alert_event_id = e.id)
ORDER BY e.committed_at
LIMIT $2
"""
# Recharges started and not settled (a crash between the row and the charge, or a charge still processing).
_UNSETTLED = """
SELECT alert_event_id, org_id, month, status, amount, payment_id, detail, created_at FROM recharges
WHERE status = 'started' AND created_at >= now() - $1::interval AND updated_at <= now() - $2::interval
ORDER BY created_at
LIMIT $3
"""


def _settings(row: asyncpg.Record) -> AutoRecharge:
    return AutoRecharge(
        organization_id=row["org_id"],
        enabled=row["enabled"],
        threshold=MicroCredits(row["threshold"]),
        pack_key=row["pack_key"],
        monthly_cap=row["monthly_cap"],
        currency=row["currency"],
        updated_at=row["updated_at"],
    )


def _recharge(row: asyncpg.Record) -> Recharge:
    return Recharge(
        alert_event_id=row["alert_event_id"],
        organization_id=row["org_id"],
        month=row["month"],
        status=RechargeStatus(row["status"]),
        amount=row["amount"],
        payment_id=row["payment_id"],
        detail=row["detail"],
        created_at=row["created_at"],
    )


async def lock_organization(connection: asyncpg.Connection, organization_id: UUID) -> None:
    """Take the organization's auto-recharge lock until the transaction ends."""
    await connection.execute(_LOCK, organization_id)


async def save_settings(connection: Connection, settings: AutoRecharge) -> AutoRecharge:
    s = settings
    updated_at = await connection.fetchval(
        _UPSERT, s.organization_id, s.enabled, s.threshold, s.pack_key, s.monthly_cap, s.currency
    )
    return AutoRecharge(s.organization_id, s.enabled, s.threshold, s.pack_key, s.monthly_cap, s.currency, updated_at)


async def settings_of(
    connection: Connection, organization_id: UUID, *, for_update: bool = False
) -> AutoRecharge | None:
    row = await connection.fetchrow(_SETTINGS + (" FOR UPDATE" if for_update else ""), organization_id)
    return None if row is None else _settings(row)


async def charged_in(connection: Connection, organization_id: UUID, month: date) -> int:
    """What recharges charged (or are charging) in the month, in minor units."""
    counted = [status.value for status in COUNTED]
    total = await connection.fetchval(_CHARGED, organization_id, month, counted, list(COUNTED_PAYMENTS))
    return int(total)


async def crossing_closed(connection: Connection, crossing: Crossing, max_age: timedelta) -> str:
    """Why the crossing is not to be charged (RESOLVED: its rule has a later event; STALE: older
    than `max_age`; UNCHANGED: a settings write re-fired a fall already handled), or "" to charge it."""
    row = await connection.fetchrow(_CLOSED, crossing.organization_id, crossing.alert_event_id, max_age, list(HANDLED))
    if row is None or row["later"]:
        return RESOLVED
    if row["stale"]:
        return STALE
    return UNCHANGED if row["unchanged"] else ""


async def insert_recharge(connection: Connection, recharge: Recharge) -> bool:
    """Record the crossing's recharge: False when another runner recorded it first."""
    r = recharge
    status = await connection.execute(
        _INSERT, r.alert_event_id, r.organization_id, r.month, r.amount, r.status.value, r.detail
    )
    return bool(status == "INSERT 0 1")


async def settle_recharge(
    connection: Connection, alert_event_id: UUID, status: RechargeStatus, payment_id: UUID | None, detail: str
) -> bool:
    """Move a started recharge to its outcome: False when it was settled already (or is not there)."""
    done = await connection.execute(_SET_STATUS, alert_event_id, status.value, payment_id, detail)
    return bool(done == "UPDATE 1")


async def recharge_of(connection: Connection, alert_event_id: UUID) -> Recharge | None:
    row = await connection.fetchrow(_RECHARGE, alert_event_id)
    return None if row is None else _recharge(row)


async def recharges_of(connection: Connection, organization_id: UUID, limit: int) -> list[Recharge]:
    """The organization's newest recharges first."""
    return [_recharge(row) for row in await connection.fetch(_OF_ORG, organization_id, limit)]


async def unhandled_crossings(connection: Connection, look_back: timedelta, limit: int) -> list[Crossing]:
    rows = await connection.fetch(_UNHANDLED, look_back, limit)
    return [Crossing(row["org_id"], row["id"], row["committed_at"]) for row in rows]


async def unsettled_recharges(
    connection: Connection, look_back: timedelta, untouched_for: timedelta, limit: int
) -> list[Recharge]:
    """Started recharges made within `look_back` and left untouched for `untouched_for`."""
    return [_recharge(row) for row in await connection.fetch(_UNSETTLED, look_back, untouched_for, limit)]
