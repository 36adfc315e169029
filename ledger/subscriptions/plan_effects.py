"""What a subscription does outside its own rows: the commands it sends the organization's actor
(the credits a change grants or takes back; the access a plan gives is
`ledger.billing.turnover.plan_access`) and the member and kit limits it sets in the directory.

A command's idempotency key is derived from the billing fact that caused it (`ledger.billing.keys`),
so sending it again (a retried request, a job run twice) has one effect. A mid-period grant is the
same kind of lot as the turnover's grant of the period (`ledger.billing.turnover`): a base lot of the
subscription for the plan's products that ends with the month, so a revocation finds both.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

import asyncpg

from ledger.billing.calendar import Period
from ledger.billing.catalog import CreditPolicy, Plan
from ledger.core.commands import (
    GrantCredits,
    LotKind,
    LotSource,
    LotTerms,
    Payload,
    RevenueTreatment,
    RevokeCredits,
    RolloverRule,
)
from ledger.core.entries import Status
from ledger.core.errors import CommandFailed
from ledger.core.money import MicroCredits
from ledger.directory.members import lock_members, write_limits
from ledger.stream.mailbox import Mailbox
from ledger.stream.replies import Reply
from ledger.subscriptions.effects import Effects, LedgerEffect, effects_of

log = logging.getLogger(__name__)


def rollover_of(plan: Plan) -> RolloverRule | None:
    """A base lot's fate at its end: into the bank with the plan's cap and lifetime, or none (reset)."""
    if plan.credit_policy is not CreditPolicy.ROLLOVER or plan.rollover_cap is None or not plan.rollover_cycles:
        return None
    return RolloverRule(plan.rollover_cap, plan.rollover_cycles)


def base_grant(plan: Plan, amount: MicroCredits, credit_period: Period) -> GrantCredits:
    """Subscription credits for (part of) a credit period: a base lot, for the plan's products, that
    ends with the period and then rolls over or resets per the plan."""
    return GrantCredits(
        amount=amount,
        kind=LotKind.BASE,
        expires_at=credit_period.end,
        products=plan.products,
        rollover=rollover_of(plan),
        terms=LotTerms(
            source=LotSource.SUBSCRIPTION, revenue_treatment=RevenueTreatment.DEFERRED, currency=plan.currency
        ),
    )


def revocation(amount: MicroCredits, credit_period: Period, reason: str) -> RevokeCredits:
    """Take back up to `amount` of the period's subscription lots (never below what is left)."""
    return RevokeCredits(amount=amount, expires_at=credit_period.end, reason=reason)


def credit_change(plan: Plan, credits: MicroCredits, credit_period: Period, reason: str) -> Payload | None:
    """A prorated change's effect on credits: a grant, a revocation, or nothing."""
    if credits > 0:
        return base_grant(plan, credits, credit_period)
    if credits < 0:
        return revocation(MicroCredits(-credits), credit_period, reason)
    return None


def limits_for(plan: Plan) -> tuple[int | None, int | None]:
    """The directory's (member limit, kit limit) under `plan`: kits are unlimited when extra ones
    are priced (they are charged, not refused), else the included ones are the limit."""
    kit_limit = None if plan.extra_kit_price is not None else plan.kits_included
    return plan.members_max, kit_limit


async def apply_limits(connection: asyncpg.Connection, organization_id: UUID, plan: Plan) -> None:
    """Set the plan's limits under the org's members lock (in the caller's transaction). A limit
    below the current count keeps who is there and refuses new ones."""
    member_limit, kit_limit = limits_for(plan)
    await lock_members(connection, organization_id)
    await write_limits(connection, organization_id, member_limit, kit_limit)


async def send(
    effects: Effects | Mailbox, organization_id: UUID, sent: Sequence[tuple[str, Payload]], at: datetime
) -> list[Reply]:
    """Send (key, payload) commands to the org's actor in order, wait until they are committed and
    answer their replies. The caller sends before it records the change (under its row lock), so a
    command the ledger refused is CommandFailed and nothing is recorded."""
    replies = await effects_of(effects).apply(
        organization_id, [LedgerEffect(key, payload, at) for key, payload in sent]
    )
    for (key, _), reply in zip(sent, replies, strict=True):
        if reply.result.status is Status.REJECTED:
            log.error("billing effect %s was refused: %s %s", key, reply.result.code, reply.result.message)
            raise CommandFailed(f"the ledger refused {key}: {reply.result.code} {reply.result.message or ''}".strip())
    return replies
