"""Every enum of the schema that the domain defines, registered here once.

The GraphQL enum is the domain's own enum (one name serves both, and a resolver passes values
through unconverted). A module that uses one of these in a type imports it from here, so it is
registered before any type names it. Enums that only the API has (`Ack`, `CommandStatus`,
`ApiKeyScope`) are declared with `@strawberry.enum` where they are used."""

from __future__ import annotations

import strawberry

from graphql_api.access.principal import PrincipalKind
from ledger.billing.catalog import CreditPolicy, Interval, ProductKind
from ledger.billing.subscription import SubscriptionStatus
from ledger.core.commands import AccessStatus, AlertKind, AtZero, LotKind, LotSource, Period, RevenueTreatment
from ledger.core.entries import AlertState
from ledger.directory.invitations import InvitationStatus
from ledger.directory.roles import Role
from ledger.store.usage import BucketSize, GroupKey

__all__ = [
    "AccessStatus",
    "AlertKind",
    "AlertState",
    "AtZero",
    "BucketSize",
    "CreditPolicy",
    "GroupKey",
    "Interval",
    "InvitationStatus",
    "LotKind",
    "LotSource",
    "Period",
    "PrincipalKind",
    "ProductKind",
    "RevenueTreatment",
    "Role",
    "SubscriptionStatus",
]

strawberry.enum(LotKind, name="LotKind", description="What a credit lot is for; sets its default priority.")
strawberry.enum(LotSource, name="LotSource", description="Where a lot's credits came from.")
strawberry.enum(RevenueTreatment, name="RevenueTreatment", description="How finance recognizes a lot's revenue.")
strawberry.enum(AtZero, name="AtZero", description="What a debit does when the credits cannot cover it.")
strawberry.enum(Period, name="Period", description="A calendar period in UTC (weeks start on Monday).")
strawberry.enum(BucketSize, name="UsageBucketSize", description="How long each bucket of a usage report is, in UTC.")
strawberry.enum(
    GroupKey,
    name="UsageGroup",
    description='What splits a usage bucket besides time: PRODUCT, MODEL (the "model" dimension), TEAM or USER.',
)
strawberry.enum(
    AlertKind,
    name="AlertKind",
    description="LOW_BALANCE: available credits at or below the threshold. "
    "HIGH_SPEND: spend in the current period at or above it. "
    "STORAGE_OVER_QUOTA: built in (never set), the storage in use over the plan's quota; its events' threshold "
    "and value are the quota and the usage in GB. "
    "AUTO_RECHARGE: the balance at or below the auto-recharge threshold (set with setAutoRecharge only). "
    "PAYMENT_FAILED, AUTO_RECHARGE_FAILED, RENEWAL_NOTICE, SUSPENDED: raised by billing, never set; their "
    "threshold and value are money in the currency's minor unit (0 for a notice).",
)
strawberry.enum(
    AccessStatus,
    name="AccessStatus",
    description="Whether the plan lets the organization start new spending: ACTIVE; TRIAL_ENDED (TRIAL_ENDED); "
    "INACTIVE, e.g. Archive (PLAN_INACTIVE).",
)
strawberry.enum(
    AlertState, name="AlertState", description="TRIGGERED: the condition began to hold. RESOLVED: it ended."
)
strawberry.enum(InvitationStatus, name="InvitationStatus", description="Where an invitation stands.")
strawberry.enum(Role, name="Role", description="A member's role in an organization (seed 001).")
strawberry.enum(PrincipalKind, name="PrincipalKind", description="What kind of caller a request comes from.")
strawberry.enum(
    ProductKind,
    name="ProductKind",
    description="USAGE: metered in native units, priced in credits. STORAGE: a gauge in GB against the plan's quota. "
    "SUBSCRIPTION, SEAT: a plan's recurring price. PACK: credits bought once.",
)
strawberry.enum(
    CreditPolicy,
    name="CreditPolicy",
    description="What a period's unused base credits do at its end: RESET (use it or lose it) or ROLLOVER (into "
    "the bank, within the plan's cap and lifetime).",
)
strawberry.enum(
    Interval, name="BillingInterval", description="How often a subscription is billed (credits come monthly)."
)
strawberry.enum(
    SubscriptionStatus,
    name="SubscriptionStatus",
    description="TRIALING, ACTIVE, CANCELED (ended) or ARCHIVED (on a plan without usage; history stays).",
)
