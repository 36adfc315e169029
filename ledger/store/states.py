"""Organizations' ledger states, read for a batch of commands: everything live (lots with credits
left, open holds, rules, rates, counters) plus whatever the commands name (a refunded lot, a
captured hold, a quoted price, a debit to credit back)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg

from ledger.core import codec
from ledger.core.commands import Command, LotKind, LotTerms, RolloverRule
from ledger.core.entries import CREDIT_LINE_ACCOUNT, LOT_ACCOUNT, OVERAGE_ACCOUNT, USAGE_ACCOUNT
from ledger.core.money import MicroCredits
from ledger.core.references import references
from ledger.core.state import (
    Debit,
    Hold,
    HoldStatus,
    Lot,
    OrgState,
    Quote,
    Rate,
    SpendKey,
)
from ledger.store.catalog_rates import rate_versions_for
from ledger.store.settings import no_rules, read_rule

# Budgets and caps count calendar periods of at most a month; a week may start in the month before.
_COUNTER_LOOKBACK = timedelta(days=38)

_ORGANIZATIONS = "SELECT id, credit_drawn FROM organizations WHERE id = ANY($1::uuid[])"
_TEAMS = "SELECT org_id, id FROM teams WHERE org_id = ANY($1::uuid[])"
_LOTS = """
SELECT org_id, id, kind, amount, remaining, priority, effective_at, expires_at, created_at, team_id, products,
       rollover, source, refundable, revenue_treatment, price_per_credit, currency, parent_id
FROM credit_lots
WHERE org_id = ANY($1::uuid[]) AND (remaining > 0 OR id = ANY($2::uuid[]))
"""
_HOLDS = """
SELECT org_id, id, transaction_id, amount, reserved, captured, expires_at, placed_at, status, product, team_id,
       user_id, run_id, cap
FROM credit_holds
WHERE org_id = ANY($1::uuid[]) AND (status = 'open' OR id = ANY($2::uuid[]))
"""
_QUOTES = """
SELECT org_id, id, transaction_id, product, quantity, credits_per_unit, amount, expires_at, team_id, user_id, used_by
FROM credit_quotes WHERE org_id = ANY($1::uuid[]) AND id = ANY($2::uuid[])
"""
_SETTINGS = "SELECT org_id, kind, key, value FROM ledger_settings WHERE org_id = ANY($1::uuid[])"
_COUNTERS = """
SELECT org_id, scope, period_start, spent FROM spend_counters
WHERE org_id = ANY($1::uuid[]) AND period_start >= $2
"""
# A capture's team and user are its hold's.
_DEBITS = """
SELECT t.org_id, t.id, t.payload, t.received_at,
       coalesce(t.payload->>'team_id', h.team_id::text) AS team_id,
       coalesce(t.payload->>'user_id', h.user_id) AS user_id,
       EXISTS (SELECT 1 FROM ledger_transactions c
               WHERE c.org_id = t.org_id AND c.command_type = 'credit_back' AND c.status = 'accepted'
                 AND c.payload->>'transaction_id' = t.id::text) AS reversed
FROM ledger_transactions t
LEFT JOIN credit_holds h ON h.org_id = t.org_id AND h.id::text = t.payload->>'hold_id'
WHERE t.org_id = ANY($1::uuid[]) AND t.id = ANY($2::uuid[]) AND t.status = 'accepted'
  AND t.command_type IN ('record_usage', 'capture_hold')
"""
_DEBIT_POSTINGS = """
SELECT org_id, transaction_id, account, lot_id, amount FROM ledger_postings
WHERE org_id = ANY($1::uuid[]) AND transaction_id = ANY($2::uuid[])
ORDER BY org_id, transaction_id, leg
"""


class UnknownOrganizations(LookupError):
    """Commands name organizations that do not exist: they can never apply."""

    def __init__(self, organization_ids: frozenset[UUID]) -> None:
        super().__init__(f"commands name unknown organizations: {sorted(organization_ids)}")
        self.organization_ids = organization_ids


@dataclass
class _References:
    lots: set[UUID] = field(default_factory=set)
    holds: set[UUID] = field(default_factory=set)
    quotes: set[UUID] = field(default_factory=set)
    debits: set[UUID] = field(default_factory=set)
    products: set[str] = field(default_factory=set)
    earliest: datetime | None = None

    def saw(self, at: datetime) -> None:
        self.earliest = at if self.earliest is None else min(self.earliest, at)


def _references(commands: Iterable[Command]) -> _References:
    refs = _References()
    for named in map(references, commands):
        refs.lots |= named.lots
        refs.holds |= named.holds
        refs.quotes |= named.quotes
        refs.debits |= named.debits
        refs.products |= named.products
        refs.saw(named.reads_from)
    return refs


async def load_states(connection: asyncpg.Connection, commands: Sequence[Command]) -> dict[UUID, OrgState]:
    """The state of every organization the commands name, as committed."""
    return await _load(connection, sorted({command.organization_id for command in commands}), _references(commands))


async def load_live_states(
    connection: asyncpg.Connection, org_ids: Sequence[UUID], at: datetime
) -> dict[UUID, OrgState]:
    """What is live in these organizations at `at` (their lots, holds, rules and the current
    periods' counters, no rates): what a meter starts from."""
    return await _load(connection, sorted(set(org_ids)), _References(earliest=at))


async def _load(connection: asyncpg.Connection, org_ids: list[UUID], refs: _References) -> dict[UUID, OrgState]:
    states = {row["id"]: OrgState(row["id"], credit_drawn=row["credit_drawn"])
              for row in await connection.fetch(_ORGANIZATIONS, org_ids)}  # fmt: skip
    missing = frozenset(org_ids) - states.keys()
    if missing:
        raise UnknownOrganizations(missing)

    debits = await _load_debits(connection, org_ids, refs.debits) if refs.debits else {}
    for debit in (d for org_debits in debits.values() for d in org_debits.values()):
        refs.lots.update(lot_id for lot_id, _ in debit.lot_legs)
        refs.saw(debit.occurred_at)

    teams: dict[UUID, set[UUID]] = {org: set() for org in org_ids}
    for row in await connection.fetch(_TEAMS, org_ids):
        teams[row["org_id"]].add(row["id"])
    lots: dict[UUID, list[Lot]] = {org: [] for org in org_ids}
    for row in await connection.fetch(_LOTS, org_ids, list(refs.lots)):
        lots[row["org_id"]].append(_lot(row))
    holds: dict[UUID, dict[UUID, Hold]] = {org: {} for org in org_ids}
    for row in await connection.fetch(_HOLDS, org_ids, list(refs.holds)):
        hold = Hold(**{k: v for k, v in row.items() if k != "org_id"} | {"status": HoldStatus(row["status"])})
        holds[row["org_id"]][hold.id] = hold
        if hold.product is not None:
            refs.products.add(hold.product)
    quotes: dict[UUID, dict[UUID, Quote]] = {org: {} for org in org_ids}
    if refs.quotes:
        for row in await connection.fetch(_QUOTES, org_ids, list(refs.quotes)):
            quote = Quote(**{k: v for k, v in row.items() if k != "org_id"})
            quotes[row["org_id"]][quote.id] = quote
    settings = await _load_settings(connection, org_ids)
    spend: dict[UUID, dict[SpendKey, MicroCredits]] = {org: {} for org in org_ids}
    if any(s["budgets"] or s["members"] or s["alerts"] for s in settings.values()):
        assert refs.earliest is not None
        for row in await connection.fetch(_COUNTERS, org_ids, refs.earliest - _COUNTER_LOOKBACK):
            spend[row["org_id"]][(row["scope"], row["period_start"])] = row["spent"]
    rate_card = await rate_versions_for(connection, refs.products) if refs.products else {}

    return {
        org: replace(
            state,
            lots=tuple(lots[org]),
            rate_card=rate_card,
            holds=holds[org],
            quotes=quotes[org],
            spend=spend[org],
            debits=debits.get(org, {}),
            teams=frozenset(teams[org]),
            **settings[org],
        )
        for org, state in states.items()
    }


def _lot(row: asyncpg.Record) -> Lot:
    rollover = row["rollover"]
    return Lot(
        id=row["id"],
        kind=LotKind(row["kind"]),
        amount=MicroCredits(row["amount"]),
        remaining=MicroCredits(row["remaining"]),
        priority=row["priority"],
        effective_at=row["effective_at"],
        expires_at=row["expires_at"],
        created_at=row["created_at"],
        team_id=row["team_id"],
        products=None if row["products"] is None else frozenset(row["products"]),
        rollover=None if rollover is None else codec.from_json(RolloverRule, rollover),
        terms=codec.from_json(
            LotTerms,
            {
                "source": row["source"],
                "refundable": row["refundable"],
                "revenue_treatment": row["revenue_treatment"],
                "price_per_credit": None if row["price_per_credit"] is None else str(row["price_per_credit"]),
                "currency": row["currency"],
            },
        ),
        parent_id=row["parent_id"],
    )


async def _load_settings(connection: asyncpg.Connection, org_ids: list[UUID]) -> dict[UUID, dict[str, Any]]:
    found: dict[UUID, dict[str, Any]] = {org: {**no_rules(), "rates": {}} for org in org_ids}
    versions: dict[UUID, dict[str, list[Rate]]] = {org: {} for org in org_ids}
    for row in await connection.fetch(_SETTINGS, org_ids):
        org, kind, key, value = row["org_id"], row["kind"], row["key"], row["value"]
        if not read_rule(found[org], kind, key, value):
            rate = codec.from_json(Rate, value)
            versions[org].setdefault(rate.product, []).append(rate)
    for org, by_product in versions.items():
        found[org]["rates"] = {
            product: tuple(sorted(rates, key=lambda r: r.effective_at or datetime.min))
            for product, rates in by_product.items()
        }
    return found


async def _load_debits(
    connection: asyncpg.Connection, org_ids: list[UUID], transaction_ids: set[UUID]
) -> dict[UUID, dict[UUID, Debit]]:
    ids = list(transaction_ids)
    legs: dict[tuple[UUID, UUID], list[asyncpg.Record]] = {}
    for row in await connection.fetch(_DEBIT_POSTINGS, org_ids, ids):
        legs.setdefault((row["org_id"], row["transaction_id"]), []).append(row)
    debits: dict[UUID, dict[UUID, Debit]] = {}
    for row in await connection.fetch(_DEBITS, org_ids, ids):
        payload = row["payload"]
        product, charge, lot_legs, uncovered, uncovered_account = "", 0, [], 0, None
        for leg in legs.get((row["org_id"], row["id"]), []):
            account: str = leg["account"]
            if account.startswith(f"{USAGE_ACCOUNT}:"):
                product, charge = account.split(":", 1)[1], leg["amount"]
            elif account == LOT_ACCOUNT:
                lot_legs.append((leg["lot_id"], MicroCredits(-leg["amount"])))
            elif account == CREDIT_LINE_ACCOUNT or account.startswith(f"{OVERAGE_ACCOUNT}:"):
                uncovered, uncovered_account = -leg["amount"], account.split(":", 1)[0]
        occurred = payload.get("occurred_at")
        debits.setdefault(row["org_id"], {})[row["id"]] = Debit(
            transaction_id=row["id"],
            product=product,
            charge=MicroCredits(charge),
            lot_legs=tuple(lot_legs),
            uncovered=MicroCredits(uncovered),
            uncovered_account=uncovered_account,
            occurred_at=datetime.fromisoformat(occurred) if occurred else row["received_at"],
            team_id=UUID(row["team_id"]) if row["team_id"] else None,
            user_id=row["user_id"],
            reversed=row["reversed"],
        )
    return debits
