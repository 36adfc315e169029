"""The commands billing sends to an organization's actor: the access its plan gives, the storage it
uses, the reversal of a period's credits when seats go down, suspension for an unpaid invoice, and
the alert events billing raises (a failed payment or recharge, a renewal notice).

Billing decides what a plan is; the actor stays the only judge of a debit, so whatever decides one
(the plan's products, archive, trial ended) is set on the actor's state by command. `ledger.core.commands`
puts these in its `Payload` union with the others (import them from there or from here).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from ledger.core.alert_kinds import AlertKind
from ledger.core.money import ZERO, MicroCredits


class AccessStatus(StrEnum):
    """Whether the organization's plan lets it start new spending."""

    ACTIVE = "active"
    TRIAL_ENDED = "trial_ended"  # the trial is over and no paid plan followed: TRIAL_ENDED
    INACTIVE = "inactive"  # e.g. Archive: no usage at all, reads and history stay (PLAN_INACTIVE)


@dataclass(frozen=True, slots=True)
class SetAccess:
    """What the organization's plan allows from now on. Usage, holds and quotes are judged by it
    (`ledger.core.access`); a hold placed before may still be captured, its work was authorized."""

    status: AccessStatus
    plan: str  # the plan's key, named in refusals
    products: frozenset[str] | None = None  # None: every product
    storage_quota_gb: Decimal | None = None  # None: no quota
    priority_queue: bool = False  # a feature flag the client reads
    type: str = field(default="set_access", init=False)


@dataclass(frozen=True, slots=True)
class SetStorageUsage:
    """The storage the organization uses now, in GB (a gauge, not a sum): over the access's quota,
    the actor raises a `storage_over_quota` alert event, and `resolved` when it is back under."""

    gigabytes: Decimal
    type: str = field(default="set_storage_usage", init=False)


@dataclass(frozen=True, slots=True)
class RevokeCredits:
    """The defined reversal of subscription credits (a seat decrease): takes up to `amount` from the
    usable subscription lots that end at `expires_at` (the period's end), never below zero and never
    failing for want of credits; the result's details say how much was revoked."""

    amount: MicroCredits
    expires_at: datetime
    reason: str = ""
    type: str = field(default="revoke_credits", init=False)


@dataclass(frozen=True, slots=True)
class SetSuspension:
    """Suspend the organization (dunning: an invoice unpaid 7 days after its first failed charge) or
    lift it (a payment succeeded). While suspended, new spending (usage, holds, quotes) is refused
    with SUSPENDED; reads, history, grants and payments still work and no data is touched. Kept
    apart from the plan's access, so a plan change neither suspends nor lifts a suspension."""

    suspended: bool
    reason: str = ""  # e.g. the unpaid invoice's number, named in refusals
    type: str = field(default="set_suspension", init=False)


@dataclass(frozen=True, slots=True)
class RaiseBillingAlert:
    """An alert event billing raises (`BILLING_ALERT_KINDS`): journaled with this command and sent
    on the organization's alert feed like any other, exactly once per idempotency key. Changes no
    credits. `value` and `threshold` are in the alert's unit (money in minor units for payments)."""

    kind: AlertKind
    name: str
    value: MicroCredits = ZERO
    threshold: MicroCredits = ZERO
    resolved: bool = False  # RESOLVED rather than TRIGGERED (a failure cured)
    type: str = field(default="raise_billing_alert", init=False)
