"""What a subscription does outside its own rows: the commands it sends the organization's actor
(the access a plan gives, the credits a period or a change grants or takes back) and the member and
kit limits it sets in the directory.

A command's idempotency key is derived from the billing fact that caused it (`ledger.billing.keys`),
so sending it again (a retried request, a job run twice) has one effect. The builders are pure; the
turnover job uses them too, so a period's grant and a mid-period grant are the same kind of lot.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg

from ledger import constants
from ledger.billing.calendar import Period
from ledger.billing.catalog import CreditPolicy, Plan
from ledger.core.commands import (
    AccessStatus,
    Command,
    Envelope,
    GrantCredits,
    LotKind,
    LotSource,
    LotTerms,
    Payload,
    RevenueTreatment,
    RevokeCredits,
    RolloverRule,
    SetAccess,
)
from ledger.core.money import MicroCredits
from ledger.core.validation import validate
from ledger.directory.members import lock_members, write_limits
from ledger.stream.mailbox import Mailbox
from ledger.stream.replies import Reply


def access_for(plan: Plan, status: AccessStatus | None = None) -> SetAccess:
    """The access `plan` gives: no usage without generation (Archive), else its products only."""
    if status is None:
        status = AccessStatus.ACTIVE if plan.generation else AccessStatus.INACTIVE
    return SetAccess(
        status=status,
        plan=plan.key,
        products=plan.products,
        storage_quota_gb=plan.storage_quota_gb,
        priority_queue=plan.priority_queue,
    )


def rollover_of(plan: Plan) -> RolloverRule | None:
    """A base lot's fate at its end: into the bank with the plan's cap and lifetime, or none (reset)."""
    if plan.credit_policy is not CreditPolicy.ROLLOVER or plan.rollover_cap is None or plan.rollover_cycles is None:
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


@dataclass(frozen=True, slots=True)
class Effect:
    """A command to send: to whom, under which derived key, what."""

    organization_id: UUID
    idempotency_key: str
    payload: Payload


async def send_effects(mailbox: Mailbox, effects: Sequence[Effect], at: datetime, *, wait: bool) -> list[Reply]:
    """Send the effects in order (one org's commands are applied in the order sent); with `wait`,
    return once the ledger committed them, with their replies."""
    reply_to = mailbox.reply_channel if wait else None
    commands = [
        Command(Envelope(uuid.uuid4(), e.organization_id, e.idempotency_key, at, reply_to), e.payload) for e in effects
    ]
    for command in commands:
        validate(command)
    if not commands:
        return []
    if not wait:
        await mailbox.send(commands)
        return []
    return await mailbox.send_and_wait(commands, constants.apply_wait_timeout_ms)
