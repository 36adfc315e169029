"""What an organization may still spend, read for the API: its spending rules (team budgets, member
caps, policies at zero, kind priorities, alerts) and credit line as the ledger state holds them, the spend
counted against budgets and caps, and the credits each team holds."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from ledger.core.money import MicroCredits
from ledger.core.state import Balance, OrgState, SpendKey
from ledger.store.settings import no_rules, read_rule

# The rules only: rates are not needed here, and an org may have many versions of them.
_RULES = """
SELECT o.id AS org_id, o.credit_drawn, s.kind, s.key, s.value
FROM organizations o
LEFT JOIN ledger_settings s ON s.org_id = o.id AND s.kind IN ('policy', 'budget', 'member', 'priority', 'alert')
WHERE o.id = ANY($1::uuid[])
"""
_SPENT = """
SELECT k.org_id, k.scope, k.period_start, c.spent
FROM unnest($1::uuid[], $2::text[], $3::timestamptz[]) AS k (org_id, scope, period_start)
JOIN spend_counters c ON c.org_id = k.org_id AND c.scope = k.scope AND c.period_start = k.period_start
"""
# As OrgState.balance(at, team_id) counts a team: its own usable lots, and what its open holds reserve.
_TEAM_BALANCES = """
SELECT k.org_id, k.team_id,
       coalesce((SELECT sum(l.remaining) FROM credit_lots l
                 WHERE l.org_id = k.org_id AND l.team_id = k.team_id AND l.remaining > 0 AND l.effective_at <= $3
                   AND (l.expires_at IS NULL OR l.expires_at > $3)), 0)::bigint AS total,
       coalesce((SELECT sum(h.reserved) FROM credit_holds h
                 WHERE h.org_id = k.org_id AND h.team_id = k.team_id AND h.status = 'open'
                   AND h.expires_at > $3), 0)::bigint AS held
FROM unnest($1::uuid[], $2::uuid[]) AS k (org_id, team_id)
"""


async def spending_rules(
    connection: asyncpg.Connection | asyncpg.Pool, org_ids: Sequence[UUID]
) -> dict[UUID, OrgState]:
    """Each existing organization's state holding only its rules and credit line (no lots, holds,
    rates or counters): enough for the core's own priority_of, policy_for and spend_limits."""
    found: dict[UUID, dict[str, Any]] = {}
    for row in await connection.fetch(_RULES, list(org_ids)):
        rules = found.setdefault(row["org_id"], {"credit_drawn": MicroCredits(row["credit_drawn"]), **no_rules()})
        if row["kind"] is not None:  # an organization without rules has one row of nulls
            read_rule(rules, row["kind"], row["key"], row["value"])
    return {org: OrgState(org, **rules) for org, rules in found.items()}


async def spent(
    connection: asyncpg.Connection | asyncpg.Pool, counters: Sequence[tuple[UUID, SpendKey]]
) -> dict[tuple[UUID, SpendKey], MicroCredits]:
    """The spend counted under each (organization, (scope, period start)); nothing counted is 0."""
    rows = await connection.fetch(
        _SPENT,
        [org for org, _ in counters],
        [scope for _, (scope, _) in counters],
        [start for _, (_, start) in counters],
    )
    found = {(row["org_id"], (row["scope"], row["period_start"])): MicroCredits(row["spent"]) for row in rows}
    return {counter: found.get(counter, MicroCredits(0)) for counter in counters}


async def team_balances(
    connection: asyncpg.Connection | asyncpg.Pool, teams: Sequence[tuple[UUID, UUID]], at: datetime
) -> dict[tuple[UUID, UUID], Balance]:
    """What each (organization, team) holds at `at`: its own usable lots and its open holds."""
    rows = await connection.fetch(_TEAM_BALANCES, [org for org, _ in teams], [team for _, team in teams], at)
    return {
        (row["org_id"], row["team_id"]): Balance(MicroCredits(row["total"]), MicroCredits(row["held"])) for row in rows
    }
