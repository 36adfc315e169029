"""Alert events billing raises (`RaiseBillingAlert`): a payment or an auto-recharge failed, a
renewal is near, the organization was suspended. No rule watches these; billing decides them and the
actor journals each with its command, so the event goes out on the organization's alert feed once,
however often billing retries the command under the same idempotency key.

The alert id is derived from the organization and the kind (`billing_alert_id`), the same for ever,
as the storage alert's is, so a reader can follow one kind's history.
"""

from __future__ import annotations

from dataclasses import replace
from uuid import UUID

from ledger.core.change import Change
from ledger.core.commands import AlertKind, Command, RaiseBillingAlert
from ledger.core.entries import AlertEvent, AlertState, Applied
from ledger.core.ids import Namespace, derived_id
from ledger.core.state import OrgState


def billing_alert_id(organization_id: UUID, kind: AlertKind) -> UUID:
    return derived_id(Namespace.BUILT_IN_ALERTS, organization_id, kind.value)


def raise_billing_alert(state: OrgState, command: Command, request: RaiseBillingAlert) -> Applied:
    alert_id = billing_alert_id(command.organization_id, request.kind)
    crossing = AlertState.RESOLVED if request.resolved else AlertState.TRIGGERED
    event = AlertEvent(
        id=derived_id(Namespace.ALERT_EVENTS, command.envelope.command_id, alert_id, crossing.value),
        alert_id=alert_id,
        transaction_id=command.envelope.command_id,
        state=crossing,
        kind=request.kind,
        name=request.name,
        threshold=request.threshold,
        value=request.value,
        at=command.at,
    )
    applied = Change(state).applied(command.at, details={"alert_id": str(alert_id), "kind": request.kind.value})
    return replace(applied, alert_events=(*applied.alert_events, event))
