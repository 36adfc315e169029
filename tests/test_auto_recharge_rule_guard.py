"""The auto-recharge rule charges a card when it fires, so it is billing's alone: the public
setAlert and removeAlert (MANAGE_CREDITS) refuse its kind and its derived id with INVALID_INPUT,
and the rule setAutoRecharge set goes on firing as it was set."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg

from ledger.core.alerts import auto_recharge_alert_id
from tests.conftest import Service
from tests.recharge_setup import alert_events, funded, set_auto_recharge, use

SET = "mutation($input: SetAlertInput!) { setAlert(input: $input) { status } }"
REMOVE = "mutation($input: RemoveAlertInput!) { removeAlert(input: $input) { status } }"


async def _error(service: Service, mutation: str, **fields: Any) -> tuple[str, str]:
    body = await service.graphql(mutation, input=fields)
    [error] = body["errors"]
    assert body["data"] is None, body
    return error["extensions"]["code"], error["message"]


async def test_set_alert_and_remove_alert_refuse_the_auto_recharge_rule(
    paying_service: Service, pool: asyncpg.Pool
) -> None:
    org = await funded(paying_service, "60")
    answer = await set_auto_recharge(paying_service, org.org, enabled=True, threshold="50", pack="cheddar-50",
                                     monthlyCap="600")  # fmt: skip
    assert answer["enabled"], answer
    rule = str(auto_recharge_alert_id(UUID(org.org)))
    base = {"organizationId": org.org, "threshold": "1000"}
    refused = [
        # Its kind, with the rule's id or any other (raising the threshold would charge the card).
        await _error(paying_service, SET, **base, kind="AUTO_RECHARGE", alertId=rule, idempotencyKey="raise-it"),
        await _error(paying_service, SET, **base, kind="AUTO_RECHARGE", idempotencyKey="another-one"),
        # Its id under another kind (the rule would be replaced), and its removal.
        await _error(paying_service, SET, **base, kind="LOW_BALANCE", alertId=rule, idempotencyKey="replace-it"),
        await _error(paying_service, REMOVE, organizationId=org.org, alertId=rule, idempotencyKey="remove-it"),
    ]
    for code, message in refused:
        assert code == "INVALID_INPUT" and "setAutoRecharge" in message, (code, message)
    # Nothing changed: the rule fires at the threshold setAutoRecharge set, once.
    await use(org, 6)  # 60 -> 48
    [event] = await alert_events(pool, org.org, "auto_recharge")
    assert (event["state"], event["alert_id"], event["threshold"]) == ("triggered", UUID(rule), 50_000_000)
    # Other alerts are set and removed as before.
    body = await paying_service.graphql(SET, input={"organizationId": org.org, "kind": "LOW_BALANCE",
                                                    "threshold": "10", "idempotencyKey": "mine"})  # fmt: skip
    assert body["data"]["setAlert"]["status"] == "ACCEPTED", body
