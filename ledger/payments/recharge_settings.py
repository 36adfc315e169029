"""Setting auto-recharge: the settings row and the AUTO_RECHARGE alert rule the actor judges.

The rule is what notices a crossing: the organization's actor judges it after every debit and fires
TRIGGERED once when the available balance falls to the threshold, RESOLVED when a payment lifts it
back above (re-armed). So the settings write and the rule's command go together, under one lock
per organization: the command is sent and its result awaited before the row is written, so a rule
the ledger refused records nothing. Its idempotency key derives from the row it replaces and the
new rule, so a retry after a crash sends the same command (applied once), and settings that leave
the rule as it is send nothing (replacing a triggered rule would fire it again: a second recharge).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from uuid import UUID

import asyncpg

from ledger.billing.auto_recharge import monthly_cap
from ledger.billing.catalog import Catalog
from ledger.billing.money_format import to_minor
from ledger.core import bounds
from ledger.core.alerts import auto_recharge_alert_id
from ledger.core.commands import AlertKind, Payload, RemoveAlert, SetAlert
from ledger.core.entries import Status
from ledger.core.errors import ErrorCode, error_for
from ledger.core.money import MicroCredits
from ledger.payments.packs import pack_for_sale, pack_price
from ledger.payments.recharge_store import AutoRecharge, lock_organization, save_settings, settings_of
from ledger.stream.mailbox import Mailbox
from ledger.subscriptions.effects import Effects, LedgerEffect, effects_of
from ledger.subscriptions.store import live_subscription_of

RULE_NAME = "auto-recharge"


@dataclass(frozen=True, slots=True)
class AutoRechargeRequest:
    organization_id: UUID
    enabled: bool
    threshold: MicroCredits
    pack_key: str
    monthly_cap: Decimal  # money in the pack's currency, as written


async def set_auto_recharge(
    pool: asyncpg.Pool, effects: Effects | Mailbox, catalog: Catalog, request: AutoRechargeRequest, now: datetime
) -> AutoRecharge:
    """Check the request (the pack buyable by the organization's plan, the cap, the threshold),
    then set or remove the rule and write the settings."""
    bounds.check_credits(request.threshold, "threshold")
    subscription = await live_subscription_of(pool, request.organization_id)
    pack = pack_for_sale(catalog, request.pack_key, None if subscription is None else subscription.plan_key, now)
    settings = AutoRecharge(
        organization_id=request.organization_id,
        enabled=request.enabled,
        threshold=request.threshold,
        pack_key=pack.key,
        monthly_cap=monthly_cap(request.monthly_cap, pack.currency, to_minor(pack_price(pack), pack.currency)),
        currency=pack.currency,
    )
    async with pool.acquire() as connection, connection.transaction():
        await lock_organization(connection, request.organization_id)
        old = await settings_of(connection, request.organization_id, for_update=True)
        payload = rule_change(old, settings)
        if payload is not None:
            await _send(effects, settings.organization_id, _key(old, settings), payload, now)
        return await save_settings(connection, settings)


def rule_change(old: AutoRecharge | None, new: AutoRecharge) -> Payload | None:
    """The command that makes the actor's rule match `new`, or None when it already does."""
    was_on = old is not None and old.enabled
    if not new.enabled:
        return RemoveAlert(auto_recharge_alert_id(new.organization_id)) if was_on else None
    if was_on and old is not None and old.threshold == new.threshold:
        return None
    return SetAlert(auto_recharge_alert_id(new.organization_id), AlertKind.AUTO_RECHARGE, new.threshold, RULE_NAME)


def _key(old: AutoRecharge | None, new: AutoRecharge) -> str:
    version = "new" if old is None or old.updated_at is None else old.updated_at.isoformat()
    rule = f"on:{new.threshold}" if new.enabled else "off"
    return f"auto-recharge:{new.organization_id}:{version}:{rule}"


async def _send(effects: Effects | Mailbox, organization_id: UUID, key: str, payload: Payload, now: datetime) -> None:
    [reply] = await effects_of(effects).apply(organization_id, [LedgerEffect(key, payload, now)])
    result = reply.result
    if result.status is Status.REJECTED:
        # A rule already gone (removed by hand with removeAlert) is what disabling wants.
        if isinstance(payload, RemoveAlert) and result.code == ErrorCode.NOT_FOUND:
            return
        raise error_for(result.code or ErrorCode.INVALID_INPUT, result.message or "the ledger refused the rule")
