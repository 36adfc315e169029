"""Setting and removing alerts: ledger commands, judged by the organization's actor."""

from __future__ import annotations

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
from ledger.core.commands import (
    RemoveAlert,
    SetAlert,
)
from ledger.core.ids import Namespace, derived_id
from ledger.core.money import MicroCredits
from ledger.core.validation import check_text


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
        payload = RemoveAlert(parse_id(input.alert_id, "alertId"))
        return await submit(info, org_id, input.idempotency_key, payload, input.ack)
