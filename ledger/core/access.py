"""Access: what the organization's plan lets it do, set by billing and judged by the actor.

Billing sends `SetAccess` when a subscription starts, changes plan, ends its trial or is archived;
the actor keeps it on the state, so it stays the only judge of a debit. A debit that starts new
spending (usage, a hold, a quote) is refused when the access says so, before anything is priced:

    suspended           SUSPENDED            dunning: an invoice unpaid (`SetSuspension`)
    INACTIVE            PLAN_INACTIVE        e.g. Archive: no usage at all
    TRIAL_ENDED         TRIAL_ENDED          the trial is over and no paid plan followed
    product not listed  PRODUCT_NOT_IN_PLAN  the plan's usage is for its products only (a hold
                                             with no product names none of them: refused too)

Everything else still works: reads, history, grants, expiry, releases, credit-backs, and the
capture of a hold placed before (its work was authorized when it was placed). The check is two
attribute reads, so a debit costs what it did.

Storage is a gauge (`SetStorageUsage`: the GB in use now). Whenever it is over the access's quota
(after a new reading, or after `SetAccess` lowers the quota), the actor raises a built-in alert
event, kind STORAGE_OVER_QUOTA, once per crossing, and RESOLVED when it is back under (or the quota
is raised or lifted). The event is journaled with the command like any alert event; its threshold
and value are the quota and the usage in micro-GB (GB * 10**6, exact: both have at most six
decimals), and its alert id is derived from the organization (`storage_alert_id`), the same for
ever, so no rule needs to be set.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from uuid import UUID

from ledger.core import bounds
from ledger.core.change import Change
from ledger.core.commands import AccessStatus, AlertKind, Command, SetAccess, SetStorageUsage, SetSuspension
from ledger.core.entries import AlertEvent, AlertState, Applied
from ledger.core.errors import PlanInactive, ProductNotInPlan, Suspended, TrialEnded
from ledger.core.ids import Namespace, derived_id
from ledger.core.money import MicroCredits
from ledger.core.state import Access, OrgState

STORAGE_ALERT_NAME = "storage over quota"
STORAGE_DECIMALS = bounds.STORAGE_GB_DECIMALS


def require_access(access: Access, product: str | None) -> None:
    """Refuse new spending on `product` (None: a hold with no product) that the access forbids."""
    if access.suspended:
        reason = f" ({access.suspended_reason})" if access.suspended_reason else ""
        raise Suspended(f"the organization is suspended for an unpaid invoice{reason}; pay it to restore usage")
    if access.status is not AccessStatus.ACTIVE:
        if access.status is AccessStatus.TRIAL_ENDED:
            raise TrialEnded(f"the trial of the plan {access.plan} has ended; reads and history still work")
        raise PlanInactive(f"the plan {access.plan} allows no usage; reads and history still work")
    if access.products is not None and product not in access.products:
        named = "a hold with no product" if product is None else f"product {product!r}"
        raise ProductNotInPlan(f"the plan {access.plan} does not include {named}: its usage is for its products only")


def set_access(state: OrgState, command: Command, request: SetAccess) -> Applied:
    access = Access(
        status=request.status,
        plan=request.plan,
        products=request.products,
        storage_quota_gb=request.storage_quota_gb,
        priority_queue=request.priority_queue,
        # A plan change neither suspends nor lifts a suspension.
        suspended=state.access.suspended,
        suspended_reason=state.access.suspended_reason,
    )
    change = Change(state)
    change.replace_state(access=access)
    return _judge_storage(state, change.applied(command.at, details=storage_details(change.state)), command)


def set_storage_usage(state: OrgState, command: Command, request: SetStorageUsage) -> Applied:
    change = Change(state)
    change.replace_state(storage_used_gb=request.gigabytes)
    return _judge_storage(state, change.applied(command.at, details=storage_details(change.state)), command)


def set_suspension(state: OrgState, command: Command, request: SetSuspension) -> Applied:
    change = Change(state)
    change.replace_state(
        access=replace(
            state.access, suspended=request.suspended, suspended_reason=request.reason if request.suspended else ""
        )
    )
    return change.applied(command.at, details={"suspended": str(request.suspended).lower()})


def over_quota(state: OrgState) -> bool:
    quota = state.access.storage_quota_gb
    return quota is not None and state.storage_used_gb > quota


def storage_details(state: OrgState) -> dict[str, str]:
    """The result's account of storage: what is used, the quota (absent: none), whether over it."""
    details = {"used_gb": str(state.storage_used_gb), "over_quota": str(over_quota(state)).lower()}
    if state.access.storage_quota_gb is not None:
        details["quota_gb"] = str(state.access.storage_quota_gb)
    return details


def storage_alert_id(organization_id: UUID) -> UUID:
    """The built-in storage alert's id: one per organization, derived, never set."""
    return derived_id(Namespace.BUILT_IN_ALERTS, organization_id, AlertKind.STORAGE_OVER_QUOTA.value)


def _judge_storage(before: OrgState, applied: Applied, command: Command) -> Applied:
    """Fire the built-in storage alert if the command moved the usage across the quota. Whether it
    is over is a function of the state, so the crossing needs no flag of its own."""
    was, now = over_quota(before), over_quota(applied.state)
    if was == now:
        return applied
    # Back under because the quota was lifted: the event names the quota it had been over.
    quota = applied.state.access.storage_quota_gb
    if quota is None:
        quota = before.access.storage_quota_gb
    assert quota is not None  # one side was over a quota
    alert_id = storage_alert_id(command.organization_id)
    crossing = AlertState.TRIGGERED if now else AlertState.RESOLVED
    event = AlertEvent(
        id=derived_id(Namespace.ALERT_EVENTS, command.envelope.command_id, alert_id, crossing.value),
        alert_id=alert_id,
        transaction_id=command.envelope.command_id,
        state=crossing,
        kind=AlertKind.STORAGE_OVER_QUOTA,
        name=STORAGE_ALERT_NAME,
        threshold=_micro_gb(quota),
        value=_micro_gb(applied.state.storage_used_gb),
        at=command.at,
    )
    return replace(applied, alert_events=(*applied.alert_events, event))


def _micro_gb(gigabytes: Decimal) -> MicroCredits:
    # The alert columns are integers of the alert's unit; storage's is the micro-GB (exact: at most
    # six decimals, and no more than 16 digits, so the shift never rounds).
    return MicroCredits(int(gigabytes.scaleb(STORAGE_DECIMALS)))
