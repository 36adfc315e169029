"""The thin slice through every layer, over real HTTP and a real WebSocket."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import websockets

from tests.conftest import Service

CREATE = "mutation($name: String!) { createOrganization(input: {name: $name}) { id name } }"
GRANT = """
mutation($org: ID!, $amount: Credits!, $key: String!) {
  grantCredits(input: {organizationId: $org, amount: $amount, idempotencyKey: $key}) {
    status balanceAfter transactionId
  }
}
"""
USAGE = """
mutation($org: ID!, $product: String!, $quantity: Quantity!, $key: String!, $ack: Ack! = APPLIED) {
  recordUsage(input: {organizationId: $org, product: $product, quantity: $quantity, idempotencyKey: $key, ack: $ack}) {
    commandId transactionId status creditsCharged balanceAfter rejection { code message }
  }
}
"""
BALANCE = "query($id: ID!) { organization(id: $id) { balance { total available held } } }"


async def create_org(service: Service, name: str = "Acme") -> str:
    body = await service.graphql(CREATE, name=name)
    return str(body["data"]["createOrganization"]["id"])


async def balance(service: Service, org: str) -> dict[str, Any]:
    body = await service.graphql(BALANCE, id=org)
    result: dict[str, Any] = body["data"]["organization"]["balance"]
    return result


async def test_grant_use_and_watch_the_meter(service: Service) -> None:
    org = await create_org(service)
    ws_url = service.url.replace("http", "ws") + "/graphql"
    async with websockets.connect(ws_url, subprotocols=["graphql-transport-ws"]) as socket:  # type: ignore[list-item]
        await socket.send(
            json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {service.admin_key}"}})
        )
        assert json.loads(await socket.recv())["type"] == "connection_ack"
        await socket.send(json.dumps({
            "id": "1", "type": "subscribe",
            "payload": {"query": "subscription($org: ID!) { creditMeter(organizationId: $org) { total available } }",
                        "variables": {"org": org}},
        }))  # fmt: skip

        async def reading() -> dict[str, Any]:
            message = json.loads(await asyncio.wait_for(socket.recv(), 5))
            assert message["type"] == "next", message
            value: dict[str, Any] = message["payload"]["data"]["creditMeter"]
            return value

        assert await reading() == {"total": "0", "available": "0"}

        granted = await service.graphql(GRANT, org=org, amount="100", key="grant-1")
        assert granted["data"]["grantCredits"]["status"] == "ACCEPTED"
        assert granted["data"]["grantCredits"]["balanceAfter"] == "100"
        assert await reading() == {"total": "100", "available": "100"}

        used = await service.graphql(USAGE, org=org, product="sms.message", quantity="30", key="usage-1")
        outcome = used["data"]["recordUsage"]
        assert outcome["status"] == "ACCEPTED"
        assert outcome["creditsCharged"] == "30"
        assert outcome["balanceAfter"] == "70"
        assert await reading() == {"total": "70", "available": "70"}

    assert await balance(service, org) == {"total": "70", "available": "70", "held": "0"}


async def test_same_idempotency_key_charges_once_and_answers_the_same(service: Service) -> None:
    org = await create_org(service)
    await service.graphql(GRANT, org=org, amount="100", key="grant-1")
    first = await service.graphql(USAGE, org=org, product="sms.message", quantity="30", key="event-42")
    second = await service.graphql(USAGE, org=org, product="sms.message", quantity="30", key="event-42")
    a, b = first["data"]["recordUsage"], second["data"]["recordUsage"]
    assert a["status"] == b["status"] == "ACCEPTED"
    assert a["transactionId"] == b["transactionId"]
    assert (a["creditsCharged"], a["balanceAfter"]) == (b["creditsCharged"], b["balanceAfter"]) == ("30", "70")
    assert a["commandId"] != b["commandId"]
    assert (await balance(service, org))["total"] == "70"


async def test_same_key_with_another_payload_is_a_conflict_and_changes_nothing(service: Service) -> None:
    org = await create_org(service)
    await service.graphql(GRANT, org=org, amount="100", key="grant-1")
    await service.graphql(USAGE, org=org, product="sms.message", quantity="30", key="event-1")
    again = await service.graphql(USAGE, org=org, product="sms.message", quantity="31", key="event-1")
    assert again["data"] is None
    assert again["errors"][0]["extensions"]["code"] == "IDEMPOTENCY_CONFLICT"
    assert (await balance(service, org))["total"] == "70"


async def test_queued_ack_returns_before_apply_and_the_debit_follows(service: Service) -> None:
    org = await create_org(service)
    await service.graphql(GRANT, org=org, amount="10", key="grant-1")
    queued = await service.graphql(USAGE, org=org, product="sms.message", quantity="4", key="q-1", ack="QUEUED")
    outcome = queued["data"]["recordUsage"]
    assert outcome["status"] == "QUEUED"
    assert outcome["creditsCharged"] is None and outcome["transactionId"] is None
    for _ in range(200):
        if (await balance(service, org))["total"] == "6":
            break
        await asyncio.sleep(0.01)
    assert (await balance(service, org))["total"] == "6"


async def test_usage_beyond_the_balance_is_rejected_whole(service: Service) -> None:
    org = await create_org(service)
    await service.graphql(GRANT, org=org, amount="10", key="grant-1")
    body = await service.graphql(USAGE, org=org, product="sms.message", quantity="11", key="too-much")
    outcome = body["data"]["recordUsage"]
    assert outcome["status"] == "REJECTED"
    assert outcome["rejection"]["code"] == "INSUFFICIENT_CREDITS"
    assert outcome["balanceAfter"] == "10"
    assert (await balance(service, org))["total"] == "10"


async def test_fractional_usage_is_exact(service: Service) -> None:
    org = await create_org(service)
    await service.graphql(GRANT, org=org, amount="1", key="grant-1")
    # 0.001 credits per token: 333 tokens cost exactly 0.333 credits.
    body = await service.graphql(USAGE, org=org, product="gpt-4o.input-tokens", quantity="333", key="tokens-1")
    assert body["data"]["recordUsage"]["creditsCharged"] == "0.333"
    assert (await balance(service, org))["total"] == "0.667"


async def test_health_and_readiness(service: Service) -> None:
    assert (await service.client.get("/healthz")).text == "ok"
    ready = await service.client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"ready": True, "postgres": "ok", "redis": "ok"}


async def test_invalid_input_gets_a_code_and_changes_nothing(service: Service) -> None:
    org = await create_org(service)
    await service.graphql(GRANT, org=org, amount="100", key="grant-1")
    unknown = str(uuid.uuid4())
    cases = [
        (USAGE, {"org": unknown, "product": "sms.message", "quantity": "1", "key": "k1"}, "NOT_FOUND"),
        (USAGE, {"org": "not-a-uuid", "product": "sms.message", "quantity": "1", "key": "k2"}, "INVALID_INPUT"),
        (USAGE, {"org": org, "product": "sms.message", "quantity": "0", "key": "k3"}, "INVALID_INPUT"),
        (USAGE, {"org": org, "product": "sms.message", "quantity": "-5", "key": "k4"}, "INVALID_INPUT"),
        (USAGE, {"org": org, "product": "sms.message", "quantity": "abc", "key": "k5"}, "INVALID_INPUT"),
        (USAGE, {"org": org, "product": "sms.message", "quantity": "NaN", "key": "k6"}, "INVALID_INPUT"),
        (USAGE, {"org": org, "product": "no-such-product", "quantity": "1", "key": "k7"}, "UNKNOWN_PRODUCT"),
        (USAGE, {"org": org, "product": "sms.message", "quantity": "1", "key": ""}, "INVALID_INPUT"),
        (GRANT, {"org": org, "amount": "-1", "key": "g1"}, "INVALID_INPUT"),
        (GRANT, {"org": org, "amount": "0", "key": "g2"}, "INVALID_INPUT"),
        (GRANT, {"org": org, "amount": "0.0000001", "key": "g3"}, "INVALID_INPUT"),
        (GRANT, {"org": org, "amount": 5, "key": "g4"}, "INVALID_INPUT"),
        (BALANCE, {"id": unknown}, "NOT_FOUND"),
        (BALANCE, {"id": "42"}, "INVALID_INPUT"),
        ("query { organization(id: 1 { id } }", {}, "GRAPHQL_PARSE_FAILED"),
        ("query { nope }", {}, "GRAPHQL_VALIDATION_FAILED"),
    ]
    for query, variables, code in cases:
        body = await service.graphql(query, **variables)
        assert body.get("data") is None or all(value is None for value in body["data"].values()), (variables, body)
        codes = [error["extensions"]["code"] for error in body["errors"]]
        assert codes == [code], (variables, body["errors"])
        assert "Traceback" not in json.dumps(body) and "SELECT" not in json.dumps(body)
    assert await balance(service, org) == {"total": "100", "available": "100", "held": "0"}
    count = await service.worker.pool.fetchval("SELECT count(*) FROM ledger_transactions")
    assert count == 1  # only the grant
