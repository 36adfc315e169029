"""The auto-recharge runner: one charge per crossing of the threshold, never over the monthly cap.

The organization's actor judges the AUTO_RECHARGE rule after every debit and journals one TRIGGERED
event per crossing, however many clients pushed the balance down at once; that event's row
NOTIFYs `credit_ledger_recharge`, which wakes a pass (`RechargeListener`), and the cron sweep finds
any crossing a wake-up missed. Per crossing, exactly once:

1. under the organization's auto-recharge lock (`recharge_store.lock_organization`), the
   `recharges` row is inserted (keyed by the alert event: a second runner finds it and stops) with
   what `ledger.billing.auto_recharge.decide` says: disabled (also when the crossing is no longer
   open: resolved since, or older than `recharge_crossing_max_age_s`), over the cap (nothing
   charged, an AUTO_RECHARGE_FAILED alert), or started. Everything the decision reads is read on
   the connection holding the lock: a task never waits for a second pool connection while holding
   one, so a pass cannot starve a small pool;
2. committed, then the saved card is charged off-session for the pack under the request key
   `recharge:<alert event>` (a retry finds the same payment, never a second intent); the payment's
   settlement grants the credits (`payment:<intent>`), which lifts the balance above the threshold
   and so resolves the rule: re-armed for the next crossing;
3. the recharge is marked succeeded, or failed with an AUTO_RECHARGE_FAILED alert and not retried
   (`recharge_outcomes`): the rule stays triggered, so nothing fires again until some payment (a
   pack bought by hand) lifts the balance.

A recharge left started (a crash before the charge, Stripe out, a charge still processing) is
resumed by the sweep under the same request key: a payment it already has is taken on as it is
(never marked failed because the pack's price or sale changed since), and one it has not is made.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Iterable
from datetime import timedelta
from typing import Any

from ledger import constants
from ledger.billing.auto_recharge import Decision, RechargeStatus, decide, month_of
from ledger.billing.catalog import Catalog, Pack
from ledger.billing.money_format import to_minor
from ledger.core.errors import InvalidCommand, NotFound, PaymentMethodRequired
from ledger.payments.charges import charge, resume
from ledger.payments.context import PaymentContext
from ledger.payments.packs import pack_charge, pack_for_sale, pack_price
from ledger.payments.recharge_outcomes import failed_recharge, over_cap, recharge_answered
from ledger.payments.recharge_store import (
    AutoRecharge,
    Crossing,
    Recharge,
    charged_in,
    crossing_closed,
    insert_recharge,
    lock_organization,
    recharge_of,
    settings_of,
    unhandled_crossings,
    unsettled_recharges,
)
from ledger.payments.store import Purpose, payment_by_request
from ledger.store.pool import Connection
from ledger.subscriptions.effects import RETRYABLE
from ledger.subscriptions.store import live_subscription_of

log = logging.getLogger(__name__)

# Crossings handled at once (each waits for Stripe); one organization's are serialized by its lock.
_CONCURRENCY = constants.recharge_concurrency


def recharge_key(recharge: Recharge) -> str:
    return f"recharge:{recharge.alert_event_id}"


async def handle_crossing(ctx: PaymentContext, catalog: Catalog, crossing: Crossing) -> Recharge | None:
    """Decide and start the crossing's recharge; None when another runner has it."""
    async with ctx.pool.acquire() as connection, connection.transaction():
        await lock_organization(connection, crossing.organization_id)
        settings = await settings_of(connection, crossing.organization_id)
        if await recharge_of(connection, crossing.alert_event_id) is not None:
            return None
        month = month_of(ctx.now)
        charged = await charged_in(connection, crossing.organization_id, month)
        pack = await _pack(ctx, connection, catalog, settings)
        max_age = timedelta(seconds=constants.recharge_crossing_max_age_s)
        decision = _decision(settings, pack, charged, await crossing_closed(connection, crossing, max_age))
        recharge = Recharge(
            alert_event_id=crossing.alert_event_id,
            organization_id=crossing.organization_id,
            month=month,
            status=decision.status,
            amount=decision.amount,
            detail=decision.detail,
        )
        if not await insert_recharge(connection, recharge):
            return None
        if decision.status is RechargeStatus.OVER_CAP:
            assert settings is not None
            # Sent before the row commits: an alert that could not be sent leaves no row, and the
            # sweep handles the crossing again.
            await over_cap(ctx, recharge, charged, settings.monthly_cap)
    log.info("recharge %s of %s: %s %s", recharge.alert_event_id, recharge.organization_id,
             recharge.status.value, recharge.detail)  # fmt: skip
    if recharge.status is not RechargeStatus.STARTED:
        return recharge
    return await _charge(ctx, recharge, pack)


def _decision(settings: AutoRecharge | None, pack: Pack | None, charged: int, closed: str) -> Decision:
    if settings is None or not settings.enabled:
        return decide(False, None, "", 0, charged)
    amount = None if pack is None else to_minor(pack_price(pack), pack.currency)
    return decide(True, amount, settings.currency, settings.monthly_cap, charged, closed)


async def _pack(
    ctx: PaymentContext, connection: Connection, catalog: Catalog, settings: AutoRecharge | None
) -> Pack | None:
    """The settings' pack if it is still for sale to the organization (its plan may have changed)
    in the cap's currency; read on `connection` (the caller's, when it holds one)."""
    if settings is None:
        return None
    subscription = await live_subscription_of(connection, settings.organization_id)
    try:
        pack = pack_for_sale(catalog, settings.pack_key, subscription.plan_key if subscription else None, ctx.now)
    except (NotFound, InvalidCommand):
        return None
    return pack if pack.currency == settings.currency else None


async def _charge(ctx: PaymentContext, recharge: Recharge, pack: Pack | None) -> Recharge:
    """Charge the saved card for the pack (once per recharge, whatever the retries). A payment the
    recharge already has is taken on as it is, whatever the pack is now (`pack` None: no longer sold)."""
    made = await payment_by_request(ctx.pool, recharge.organization_id, recharge_key(recharge))
    if made is not None:
        return await recharge_answered(ctx, recharge, await resume(ctx, made, off_session=True))
    if pack is None:
        return await failed_recharge(ctx, recharge, None, "the pack is no longer sold")
    request = pack_charge(pack, organization_id=recharge.organization_id, request_key=recharge_key(recharge),
                          payment_method_id=None, off_session=True, purpose=Purpose.RECHARGE)  # fmt: skip
    if request.amount != recharge.amount:
        # The pack's price changed before the charge was made: made now, it is not what was decided.
        return await failed_recharge(ctx, recharge, None, "the pack's price changed before the charge was made")
    try:
        payment = await charge(ctx, request)
    except PaymentMethodRequired as error:
        return await failed_recharge(ctx, recharge, None, error.message)
    return await recharge_answered(ctx, recharge, payment)


async def resume_recharge(ctx: PaymentContext, catalog: Catalog, recharge: Recharge) -> Recharge:
    """Take a recharge left started as far as it goes now, under its own request key."""
    pack = await _pack(ctx, ctx.pool, catalog, await settings_of(ctx.pool, recharge.organization_id))
    return await _charge(ctx, recharge, pack)


async def recharge_pass(ctx: PaymentContext, catalog: Catalog) -> int:
    """Handle the crossings no runner took (within the look-back) and resume the recharges left
    started; how many recharges were decided or moved on."""
    look_back = timedelta(seconds=constants.recharge_look_back_s)
    crossings = await unhandled_crossings(ctx.pool, look_back, constants.recharges_per_run_max)
    done = await _each(handle_crossing(ctx, catalog, crossing) for crossing in crossings)
    resume_after = timedelta(seconds=constants.recharge_resume_after_s)
    stale = await unsettled_recharges(ctx.pool, look_back, resume_after, constants.recharges_per_run_max)
    return done + await _each(resume_recharge(ctx, catalog, recharge) for recharge in stale)


async def _each(work: Iterable[Coroutine[Any, Any, Recharge | None]]) -> int:
    """Run the coroutines a few at a time; one that fails on an outage waits for the next pass."""
    pending = list(work)
    handled = 0
    for start in range(0, len(pending), _CONCURRENCY):
        results = await asyncio.gather(*pending[start : start + _CONCURRENCY], return_exceptions=True)
        for result in results:
            if isinstance(result, RETRYABLE):
                log.warning("recharge left for the next pass: %s", result)
            elif isinstance(result, BaseException):
                log.error("recharge failed unexpectedly", exc_info=result)
            elif result is not None:
                handled += 1
    return handled
