"""A subscription's period turnover: find the facts due (`ledger.billing.turnover`), send their
ledger commands and wait for the results, then record the facts. Exactly once per (subscription,
period, reason) with any number of job workers, retries and crashes:

- One subscription is advanced by one run at a time: its row is locked for the whole advance
  (`FOR UPDATE SKIP LOCKED` by the cron, which moves on to another; `FOR UPDATE` by
  `advance_subscription`, which waits). arq's own job uniqueness is no guarantee (arq #196).
- The commands go first, each under its fact's derived idempotency key (`period_key`) with a payload
  that depends only on the subscription and the catalog; then the facts are recorded in one
  transaction (a `UNIQUE` row each, with the ledger transaction that carried it, its charges, its
  change to the subscription). A crash in between leaves the facts unrecorded: the next run sends
  the same commands under the same keys, the ledger answers with the first results, and the facts
  are recorded then.
- A run only ever looks at facts after what was decided; a fact the ledger refused stops the
  subscription's turnover there (it is tried again after `turnover_retry_delay_s`, and logged); a
  ledger that is out or behind ends the cron's run. Work per run is bounded: at most
  `turnover_subscriptions_per_run_max` subscriptions, `turnover_facts_per_subscription_max` facts each.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from uuid import UUID

import asyncpg

from ledger import constants
from ledger.billing.catalog import Catalog
from ledger.billing.charges import ChargeLine
from ledger.billing.keys import period_key
from ledger.billing.subscription import Subscription
from ledger.billing.turnover import Fact, Reason, Turnover, command_time, due_facts
from ledger.core.entries import Status
from ledger.core.errors import ErrorCode, InvalidCommand, Unavailable
from ledger.directory.members import limits_by_orgs
from ledger.stream.failpoints import failpoint
from ledger.stream.mailbox import Mailbox
from ledger.stream.replies import Reply
from ledger.subscriptions import periods, store
from ledger.subscriptions.effects import RETRYABLE, Effects, LedgerEffect, effects_of
from ledger.subscriptions.plan_effects import apply_limits

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Advance:
    """What one advance of a subscription did."""

    subscription_id: UUID
    recorded: tuple[Fact, ...] = ()
    next_due_at: datetime | None = None
    problem: str | None = None  # why it stopped before all that is due (tried again later)
    ledger_unavailable: bool = False  # the ledger was out or behind: every other subscription waits too


async def advance_subscription(
    pool: asyncpg.Pool, effects: Effects | Mailbox, catalog: Catalog, subscription_id: UUID, now: datetime
) -> Advance:
    """Turn the subscription over up to `now` (its first period at once after a subscribe). Call it
    after the transaction that changed the subscription has committed: it takes the row's lock
    itself, waiting for a cron run that holds it. A mailbox must be able to wait (have a hub)."""
    async with pool.acquire() as connection, connection.transaction():
        claim = await periods.lock_subscription(connection, subscription_id)
        if claim is None:
            return Advance(subscription_id, problem="no such subscription")
        return await _advance(connection, effects_of(effects), catalog, claim, now)


async def catch_up(
    pool: asyncpg.Pool, effects: Effects | Mailbox, catalog: Catalog, organization_id: UUID, at: datetime
) -> None:
    """Before a seat or plan change at `at` (taken under the lock after this): apply what the turnover
    has due by `at`, so the change sees the subscription as it stands then (a downgrade that fell due
    at the period's start, the period's grant). A problem here is met by `require_caught_up`."""
    async with pool.acquire() as connection:
        subscription = await store.live_subscription_of(connection, organization_id)
    if subscription is not None:
        await advance_subscription(pool, effects, catalog, subscription.id, at)


async def require_caught_up(
    connection: asyncpg.Connection, catalog: Catalog, subscription: Subscription, at: datetime
) -> None:
    """Under the subscription's row lock: refuse (retryable) a change while facts due by `at` are
    still to be applied (the ledger was out, or a run's bound was reached)."""
    claim = await periods.lock_subscription(connection, subscription.id)
    decided_until = None if claim is None else claim.decided_until
    recorded = await periods.recorded_facts(connection, subscription.id, decided_until)
    if due_facts(subscription, catalog, recorded, at, decided_until=decided_until).facts:
        raise Unavailable("the subscription's turnover is catching up; retry")


async def advance_due(
    pool: asyncpg.Pool,
    effects: Effects | Mailbox,
    catalog: Catalog,
    now: datetime,
    limit: int = constants.turnover_subscriptions_per_run_max,
    time_budget_s: float = constants.turnover_run_max_s,
) -> list[Advance]:
    """Advance up to `limit` subscriptions with facts due by `now`, soonest due first, each once,
    skipping those another run holds. Stops early when the ledger is out or behind, or after
    `time_budget_s`."""
    sender = effects_of(effects)
    done: list[UUID] = []
    advances: list[Advance] = []
    deadline = time.monotonic() + time_budget_s
    while len(done) < limit and time.monotonic() < deadline:
        async with pool.acquire() as connection, connection.transaction():
            claim = await periods.claim_due(connection, now, done)
            if claim is None:
                break
            done.append(claim.subscription_id)
            advance = await _advance(connection, sender, catalog, claim, now)
        advances.append(advance)
        if advance.ledger_unavailable:
            break
    return advances


async def _advance(
    connection: asyncpg.Connection, effects: Effects, catalog: Catalog, claim: periods.Claim, now: datetime
) -> Advance:
    subscription = await store.subscription_by_id(connection, claim.subscription_id)
    assert subscription is not None, "a locked subscription exists"
    recorded = await periods.recorded_facts(connection, subscription.id, claim.decided_until)
    limits = await limits_by_orgs(connection, [subscription.organization_id])
    kits = limits[subscription.organization_id].kits if subscription.organization_id in limits else 0
    turnover = due_facts(subscription, catalog, recorded, now, decided_until=claim.decided_until, kits_used=kits)
    retry_at = now + timedelta(seconds=constants.turnover_retry_delay_s)
    try:
        replies = await _send(effects, subscription, turnover.facts, now)
    except RETRYABLE as error:
        log.warning("turnover of subscription %s waits for the ledger: %s", subscription.id, error)
        await periods.schedule(connection, subscription.id, retry_at, claim.decided_until)
        return Advance(subscription.id, problem=str(error), ledger_unavailable=True)
    except InvalidCommand as error:  # a catalog's plan no command can carry: nothing was sent
        return await _stop(connection, subscription.id, claim.decided_until, retry_at, f"a fact is invalid: {error}")
    # A crash here (commands sent, facts not recorded) is healed by the next run: same keys.
    failpoint("turnover_after_send")
    taken, problem = _applied(turnover.facts, replies)
    await _record(connection, catalog, subscription, taken, replies)
    problem = problem or turnover.blocked
    if problem is not None:
        return await _stop(connection, subscription.id, _decided(claim.decided_until, turnover, taken),
                           retry_at, problem, taken)  # fmt: skip
    await periods.schedule(connection, subscription.id, turnover.next_due_at, turnover.decided_until)
    return Advance(subscription.id, tuple(taken), turnover.next_due_at)


async def _stop(
    connection: asyncpg.Connection,
    subscription_id: UUID,
    decided_until: datetime | None,
    retry_at: datetime,
    problem: str,
    taken: Sequence[Fact] = (),
) -> Advance:
    log.error("turnover of subscription %s stopped: %s (tried again at %s)", subscription_id, problem, retry_at)
    await periods.schedule(connection, subscription_id, retry_at, decided_until)
    return Advance(subscription_id, tuple(taken), retry_at, problem)


async def _send(effects: Effects, subscription: Subscription, facts: Sequence[Fact], now: datetime) -> list[Reply]:
    """The facts' commands, in order, and their results (one per fact with a command)."""
    sent = [
        LedgerEffect(fact.key, fact.payload, command_time(fact.at, now)) for fact in facts if fact.payload is not None
    ]
    return await effects.apply(subscription.organization_id, sent)


def _applied(facts: Sequence[Fact], replies: Sequence[Reply]) -> tuple[list[Fact], str | None]:
    """The facts up to the first whose command the ledger refused, and why it did."""
    answers = iter(replies)
    taken: list[Fact] = []
    for fact in facts:
        if fact.payload is not None:
            result = next(answers).result
            if result.code == ErrorCode.IDEMPOTENCY_CONFLICT:
                # The key's first payload was applied (a catalog version loaded back-dated since?):
                # that effect stands, once; the fact is recorded with it.
                log.warning("fact %s was applied with another payload: %s", fact.key, result.message)
            elif result.status is not Status.ACCEPTED:
                return taken, f"the ledger refused {fact.key}: {result.code} {result.message}"
        taken.append(fact)
    return taken, None


def _decided(before: datetime | None, turnover: Turnover, taken: Sequence[Fact]) -> datetime | None:
    """Decided up to the last time all of whose facts are recorded."""
    if len(taken) == len(turnover.facts):
        return turnover.decided_until
    stopped_at = turnover.facts[len(taken)].at
    complete = [fact.at for fact in taken if fact.at < stopped_at]
    return max(complete, default=before)


async def _record(
    connection: asyncpg.Connection,
    catalog: Catalog,
    subscription: Subscription,
    facts: Sequence[Fact],
    replies: Sequence[Reply],
) -> None:
    """Record the facts with their transactions, charges and changes to the subscription."""
    transactions = iter(reply.transaction_id for reply in replies)
    rows: list[periods.PeriodFact] = []
    after = subscription
    for fact in facts:
        transaction = next(transactions) if fact.payload is not None else None
        rows.append(
            periods.PeriodFact(
                subscription.id,
                subscription.organization_id,
                fact.period.start,
                fact.period.end,
                fact.reason.value,
                fact.key,
                transaction,
                fact.credits,
            )
        )
        for line in fact.charges:
            key = period_key(subscription.id, fact.period.start, f"{Reason.CHARGE.value}:{line.kind}")
            await store.insert_charge(connection, _charge(subscription, fact, key, line))
        if fact.segment is not None:
            await store.add_segment(connection, subscription.organization_id, subscription.id, fact.segment)
            plan = catalog.plan_at(fact.segment.plan_key, fact.segment.effective_at)
            assert plan is not None, "the walk found the plan"
            await apply_limits(connection, subscription.organization_id, plan)
        after = fact.subscription or after
    await periods.record_facts(connection, rows)
    if after != subscription:
        await store.update_subscription(connection, replace(after, segments=subscription.segments))


def _charge(subscription: Subscription, fact: Fact, key: str, line: ChargeLine) -> store.BillingCharge:
    return store.BillingCharge(
        id=uuid.uuid4(), organization_id=subscription.organization_id, subscription_id=subscription.id,
        idempotency_key=key, kind=line.kind, description=line.description, quantity=line.quantity,
        unit_price=line.unit_price, amount=line.amount, currency=line.currency,
        period_start=fact.period.start, period_end=fact.period.end,
    )  # fmt: skip
