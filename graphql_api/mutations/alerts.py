"""Setting and removing alerts: ledger commands, judged by the organization's actor."""

from __future__ import annotations

from uuid import UUID

import strawberry

from graphql_api.access.authorize import Authorize
from graphql_api.access.policy import Permission
from graphql_api.context import Info
from graphql_api.input_types.alerts import RemoveAlertInput, SetAlertInput
from graphql_api.inputs import (
    optional_id,
    parse_id,
)
from graphql_api.outcomes import CommandOutcome
from graphql_api.submit import submit
from ledger.core.alerts import auto_recharge_alert_id
from ledger.core.commands import (
    AlertKind,
    RemoveAlert,
    SetAlert,
)
from ledger.core.errors import InvalidCommand
from ledger.core.ids import Namespace, derived_id
from ledger.core.money import MicroCredits
from ledger.core.validation import check_text

_AUTO_RECHARGE = "the auto-recharge rule is billing's: use setAutoRecharge"


def _not_auto_recharge(org_id: UUID, alert_id: UUID, kind: AlertKind | None = None) -> None:
    """Auto-recharge's rule charges the card when it fires, so only setAutoRecharge (MANAGE_BILLING)
    may set, change or remove it: refused here by its kind and by its (derivable) id."""
    if kind is AlertKind.AUTO_RECHARGE or alert_id == auto_recharge_alert_id(org_id):
        raise InvalidCommand(_AUTO_RECHARGE)


@strawberry.type
class AlertMutations:
    @strawberry.mutation(
        extensions=[Authorize(Permission.MANAGE_CREDITS)],
        description="Create or replace a low-balance or high-spend alert; its events go to the alertEvents "
        "subscription and to the organization's alertEvents.",
    )
    async def set_alert(self, info: Info, input: SetAlertInput) -> CommandOutcome:
        org_id = parse_id(input.organization_id, "organizationId")
        check_text(input.idempotency_key, "idempotency key")  # before it names the alert
        # Without an id, one from the organization and the key: a retry of the request names the same alert.
        alert_id = optional_id(input.alert_id, "alertId") or derived_id(
            Namespace.ALERT_RULES, org_id, input.idempotency_key
        )
        _not_auto_recharge(org_id, alert_id, input.kind)
        payload = SetAlert(
            alert_id=alert_id,
            kind=input.kind,
            threshold=MicroCredits(input.threshold),
            name=input.name,
            team_id=optional_id(input.team_id, "teamId"),
            user_id=input.user_id,
            period=input.period,
        )
        return await submit(info, org_id, input.idempotency_key, payload, input.ack)

    @strawberry.mutation(extensions=[Authorize(Permission.MANAGE_CREDITS)], description="Remove an alert.")
    async def remove_alert(self, info: Info, input: RemoveAlertInput) -> CommandOutcome:
        org_id = parse_id(input.organization_id, "organizationId")
        alert_id = parse_id(input.alert_id, "alertId")
        _not_auto_recharge(org_id, alert_id)
        payload = RemoveAlert(alert_id)
        return await submit(info, org_id, input.idempotency_key, payload, input.ack)
