"""`POST /v1/usage` against the real service: JSON and NDJSON in, per-event results out, the same
checks, authorization, rate limits, idempotency and `ack` as `recordUsageBatch`, and every refusal
a code (with the event's index) that queued nothing."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import asyncpg
import httpx
import pytest

from ledger import constants
from ledger.directory.api_keys import create_api_key
from ledger.directory.roles import Role
from ledger.runtime.settings import Settings
from tests.conftest import Service, serving
from tests.ledger_api import Ledger

BATCH = "mutation($input: RecordUsageBatchInput!) { recordUsageBatch(input: $input) { status } }"


def event(org: str, key: str, quantity: object = "1", **fields: Any) -> dict[str, Any]:
    return {"organizationId": org, "product": "sms.message", "quantity": quantity, "idempotencyKey": key, **fields}


async def post(
    service: Service, events: list[dict[str, Any]], *, ack: str | None = None, key: str | None = None
) -> httpx.Response:
    body: dict[str, Any] = {"events": events} if ack is None else {"events": events, "ack": ack}
    return await service.client.post("/v1/usage", json=body, headers=_auth(service, key))


async def post_lines(service: Service, events: list[dict[str, Any]], *, ack: str | None = None) -> httpx.Response:
    lines = "\n".join(json.dumps(e) for e in events) + "\n"
    headers = _auth(service) | {"content-type": "application/x-ndjson"}
    return await service.client.post("/v1/usage", content=lines, headers=headers, params={"ack": ack} if ack else {})


def _auth(service: Service, key: str | None = None) -> dict[str, str]:
    credentials = service.admin_key if key is None else key
    return {"authorization": f"Bearer {credentials}"} if credentials else {}


def refusal(response: httpx.Response, status: int, code: str, index: int | None = None) -> str:
    assert response.status_code == status, response.text[:500]
    error = response.json()["error"]
    assert error["code"] == code and error["index"] == index, error
    assert "Traceback" not in response.text
    return str(error["message"])


async def journaled(pool: asyncpg.Pool, org: str) -> list[str]:
    rows = await pool.fetch("SELECT idempotency_key FROM ledger_transactions WHERE org_id = $1", uuid.UUID(org))
    return sorted(row["idempotency_key"] for row in rows)


async def test_json_and_ndjson_batches_queue_or_apply_each_event(service: Service, pool: asyncpg.Pool) -> None:
    first, second = await Ledger.create(service, "One"), await Ledger.create(service, "Two")
    await first.accepted("grantCredits", amount="10", idempotencyKey="g1")
    await second.accepted("grantCredits", amount="1", idempotencyKey="g2")

    queued = await post(service, [event(first.org, "q-1", "2"), event(second.org, "q-2", 1)])
    assert queued.status_code == 200 and queued.headers["content-type"] == "application/json", queued.text[:500]
    results = queued.json()["results"]
    assert [r["status"] for r in results] == ["QUEUED", "QUEUED"]
    assert all(uuid.UUID(r["commandId"]) and r["transactionId"] is None for r in results)

    lines = [event(first.org, "a-1", "0.5"), event(second.org, "a-2", "5"), event(first.org, "a-3", "1")]
    applied = (await post_lines(service, lines, ack="APPLIED")).json()["results"]
    assert [r["status"] for r in applied] == ["ACCEPTED", "REJECTED", "ACCEPTED"]
    # Applied in order within each organization, after what was queued before.
    assert [r["creditsCharged"] for r in applied] == ["0.5", "0", "1"]
    assert applied[0]["balanceAfter"] == "7.5" and applied[2]["balanceAfter"] == "6.5"
    assert applied[1]["rejection"]["code"] == "INSUFFICIENT_CREDITS" and applied[0]["rejection"] is None
    assert await journaled(pool, first.org) == ["a-1", "a-3", "g1", "q-1"]
    assert (await first.balance())["total"] == "6.5"


async def test_a_retry_with_the_same_keys_charges_once_and_answers_the_first_result(service: Service) -> None:
    org = await Ledger.create(service, "Retry")
    await org.accepted("grantCredits", amount="10")
    events = [event(org.org, "r-1", "3"), event(org.org, "r-2", "2")]
    first = (await post(service, events, ack="APPLIED")).json()["results"]
    again = (await post(service, events, ack="APPLIED")).json()["results"]
    assert [r["transactionId"] for r in again] == [r["transactionId"] for r in first]
    assert [r["commandId"] for r in again] != [r["commandId"] for r in first]
    assert [r["balanceAfter"] for r in again] == ["7", "5"] and (await org.balance())["total"] == "5"
    # The same key with another quantity is a conflict, answered per event like a ledger decision.
    other = (await post(service, [event(org.org, "r-1", "4"), event(org.org, "r-3", "1")], ack="APPLIED")).json()
    assert [r["status"] for r in other["results"]] == ["REJECTED", "ACCEPTED"]
    assert other["results"][0]["rejection"]["code"] == "IDEMPOTENCY_CONFLICT"
    single = await post(service, [event(org.org, "r-2", "9")], ack="APPLIED")
    refusal(single, 409, "IDEMPOTENCY_CONFLICT")


def _written_at(offset: str) -> str:
    """A minute ago, written with this offset."""
    sign = -1 if offset.startswith("-") else 1
    hours, minutes, *seconds = (int(part) for part in offset[1:].split(":"))
    zone = timezone(sign * timedelta(hours=hours, minutes=minutes, seconds=seconds[0] if seconds else 0))
    return (datetime.now(UTC) - timedelta(minutes=1)).astimezone(zone).isoformat()


BAD_EVENTS: list[tuple[str, dict[str, Any], str]] = [
    ("negative", {"quantity": "-1"}, "INVALID_INPUT"),
    ("zero", {"quantity": "0"}, "INVALID_INPUT"),
    ("a float", {"quantity": 1.5}, "INVALID_INPUT"),
    ("a bool", {"quantity": True}, "INVALID_INPUT"),
    ("too many decimals", {"quantity": "0.0000000000001"}, "INVALID_INPUT"),
    ("an exponent", {"quantity": "1e3"}, "INVALID_INPUT"),
    ("too large", {"quantity": str(10**15 + 1)}, "INVALID_INPUT"),
    ("unknown product", {"product": "no.such.product"}, "UNKNOWN_PRODUCT"),
    ("a long key", {"idempotencyKey": "k" * 256}, "INVALID_INPUT"),
    ("an empty key", {"idempotencyKey": ""}, "INVALID_INPUT"),
    ("a NUL in the key", {"idempotencyKey": "a\x00b"}, "INVALID_INPUT"),
    ("a bad team id", {"teamId": "team-1"}, "INVALID_INPUT"),
    ("a bad quote id", {"quoteId": "nope"}, "INVALID_INPUT"),
    ("a naive time", {"occurredAt": "2026-01-01T00:00:00"}, "INVALID_INPUT"),
    ("an old time", {"occurredAt": "2001-01-01T00:00:00Z"}, "INVALID_INPUT"),
    ("a future time", {"occurredAt": (datetime.now(UTC) + timedelta(hours=1)).isoformat()}, "INVALID_INPUT"),
    ("twin dimensions", {"dimensions": [{"name": "m", "value": "a"}, {"name": "m", "value": "b"}]}, "INVALID_INPUT"),
    ("many dimensions", {"dimensions": [{"name": f"d{i}", "value": "v"} for i in range(17)]}, "INVALID_INPUT"),
    ("a long user id", {"userId": "u" * 501}, "INVALID_INPUT"),
    ("a price past the range", {"product": "sms.message", "quantity": str(10**13)}, "INVALID_INPUT"),
    ("a NUL in the product", {"product": "sms.message\x00"}, "INVALID_INPUT"),
    ("a long product", {"product": "p" * 101}, "INVALID_INPUT"),
    # Offsets PostgreSQL cannot read back (journaled, they would fail every reader of the row).
    ("an offset past 15:59", {"occurredAt": _written_at("+23:59")}, "INVALID_INPUT"),
    ("an offset with seconds", {"occurredAt": _written_at("-03:00:30")}, "INVALID_INPUT"),
]
# Refused by GraphQL's scalars while variables are coerced: the same check, the message in graphql-core's words.
_SCALAR_LEVEL = {"quantity", "occurredAt"}


@pytest.mark.parametrize(
    ("change", "code"), [(c, code) for _, c, code in BAD_EVENTS], ids=[n for n, _, _ in BAD_EVENTS]
)
async def test_one_bad_event_refuses_the_request_as_graphql_does_and_queues_nothing(
    service: Service, pool: asyncpg.Pool, change: dict[str, Any], code: str
) -> None:
    org = await Ledger.create(service, "Strict")
    await org.accepted("grantCredits", amount="100", idempotencyKey="grant")
    events = [event(org.org, "ok-1"), event(org.org, "ok-2"), event(org.org, "bad") | change, event(org.org, "ok-3")]
    message = refusal(await post(service, events), 400, code, index=2)
    lines = await post_lines(service, events)
    assert lines.status_code == 400 and lines.json()["error"]["code"] == code and lines.json()["error"]["index"] == 2
    # The one validation: recordUsageBatch refuses the same batch with the same code.
    graphql = await service.graphql(BATCH, input={"events": events})
    assert graphql["errors"][0]["extensions"]["code"] == code, graphql
    if not _SCALAR_LEVEL & change.keys() or change.get("occurredAt", "").endswith(("T00:00:00", "Z")):
        assert graphql["errors"][0]["message"] == message
    # Nothing was queued: an applied request behind it in the same partition finds only the grant.
    assert (await post(service, [event(org.org, "after")], ack="APPLIED")).json()["results"][0]["balanceAfter"] == "99"
    assert await journaled(pool, org.org) == ["after", "grant"]


async def test_malformed_bodies_are_refused_with_a_code(service: Service, pool: asyncpg.Pool) -> None:
    org = await Ledger.create(service, "Shapes")
    headers = _auth(service) | {"content-type": "application/json"}

    async def raw(content: bytes, content_type: str = "application/json") -> httpx.Response:
        return await service.client.post("/v1/usage", content=content, headers=headers | {"content-type": content_type})

    refusal(await raw(b"{not json"), 400, "BAD_REQUEST")
    refusal(await raw(b'[{"organizationId": "x"}]'), 400, "INVALID_INPUT")
    refusal(await raw(json.dumps({"events": [event(org.org, "k")], "extra": 1}).encode()), 400, "INVALID_INPUT")
    unknown_field = {"events": [event(org.org, "k0"), event(org.org, "k", colour="red")]}
    assert "colour" in refusal(await raw(json.dumps(unknown_field).encode()), 400, "INVALID_INPUT", index=1)
    missing = {"events": [{"organizationId": org.org, "product": "sms.message", "quantity": "1"}]}
    assert "idempotencyKey" in refusal(await raw(json.dumps(missing).encode()), 400, "INVALID_INPUT", index=0)
    refusal(await raw(json.dumps({"events": []}).encode()), 400, "INVALID_INPUT")
    refusal(await raw(json.dumps({"events": [event(org.org, "k")], "ack": "SOON"}).encode()), 400, "INVALID_INPUT")
    refusal(await raw(b'{"organizationId": "x"}\n', "application/x-ndjson"), 400, "INVALID_INPUT", index=0)
    lines = (json.dumps(event(org.org, "k")) + "\n").encode()
    refusal(await service.client.post("/v1/usage?ack=LATER", content=lines, headers=headers | {
        "content-type": "application/x-ndjson"}), 400, "INVALID_INPUT")  # fmt: skip
    for content_type in ("text/plain", "application/xml", "multipart/form-data"):
        refusal(await raw(lines, content_type), 415, "BAD_REQUEST")
    no_type = await service.client.post("/v1/usage", content=lines, headers=_auth(service))
    refusal(no_type, 415, "BAD_REQUEST")
    wrong_method = await service.client.get("/v1/usage", headers=_auth(service))
    refusal(wrong_method, 405, "METHOD_NOT_ALLOWED")
    assert wrong_method.headers["allow"] == "POST"
    await post(service, [event(org.org, "after")], ack="APPLIED")
    assert await journaled(pool, org.org) == ["after"]


async def test_ndjson_is_one_event_a_line_and_times_read_alike_both_ways(service: Service, pool: asyncpg.Pool) -> None:
    org = await Ledger.create(service, "Lines")
    await org.accepted("grantCredits", amount="10", idempotencyKey="grant")
    headers = _auth(service) | {"content-type": "application/x-ndjson"}
    two = json.dumps(event(org.org, "l-1")) + json.dumps(event(org.org, "l-2")) + "\n"
    refusal(await service.client.post("/v1/usage", content=two, headers=headers), 400, "BAD_REQUEST", index=0)
    # A byte order mark before the first line is skipped.
    marked = "\ufeff" + json.dumps(event(org.org, "l-3")) + "\n\n" + json.dumps(event(org.org, "l-4"))
    answered = await service.client.post("/v1/usage", content=marked.encode(), headers=headers)
    assert [r["status"] for r in answered.json()["results"]] == ["QUEUED", "QUEUED"], answered.text
    # An ack in the query string of a JSON body would be ignored: it is refused instead.
    refusal(await service.client.post("/v1/usage?ack=APPLIED", json={"events": [event(org.org, "l-5")]},
            headers=_auth(service)), 400, "INVALID_INPUT")  # fmt: skip
    # A field name cannot pose as msgspec's path: the index is the real one.
    spoof = {"events": [event(org.org, "l-6") | {"x - at `$.events[7]`": 1}]}
    refusal(await post(service, spoof["events"]), 400, "INVALID_INPUT", index=0)
    # Seven fractional digits are read alike by GraphQL and the route: a retry across them is no conflict.
    written = (datetime.now(UTC) - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%S.%f") + "7Z"
    batch = """mutation($e: [UsageEventInput!]!) {
        recordUsageBatch(input: {events: $e, ack: APPLIED}) { transactionId rejection { code } } }"""
    first = (await service.graphql(batch, e=[event(org.org, "t-1", occurredAt=written)]))["data"]["recordUsageBatch"][0]
    again = (await post(service, [event(org.org, "t-1", occurredAt=written)], ack="APPLIED")).json()["results"][0]
    assert again["transactionId"] == first["transactionId"], (first, again)
    codes = [(answer["rejection"] or {}).get("code") for answer in (first, again)]
    assert codes[0] == codes[1] != "IDEMPOTENCY_CONFLICT", (first, again)


async def test_too_large_requests_are_refused_before_anything_is_checked(service: Service) -> None:
    org = await Ledger.create(service, "Large")
    many = [event(org.org, f"m-{i}") for i in range(constants.usage_batch_max + 1)]
    assert "at most 1000" in refusal(await post(service, many), 413, "REQUEST_TOO_LARGE")
    huge = [event(org.org, "h", userId="u" * service.settings.max_request_bytes)]
    refusal(await post(service, huge), 413, "REQUEST_TOO_LARGE")
    full = [event(org.org, f"f-{i}", dimensions=[{"name": "model", "value": "gpt-4o"}]) for i in range(1000)]
    answered = await post(service, full)
    assert answered.status_code == 200 and len(answered.json()["results"]) == 1000, answered.text[:500]


async def test_callers_are_authenticated_and_authorized_in_every_organization(
    service: Service, pool: asyncpg.Pool
) -> None:
    mine, theirs = await Ledger.create(service, "Mine"), await Ledger.create(service, "Theirs")
    _, creator = await create_api_key(
        pool, name="c", scope="organization", organization_id=uuid.UUID(mine.org), role=Role.CREATOR
    )
    _, viewer = await create_api_key(
        pool, name="v", scope="organization", organization_id=uuid.UUID(mine.org), role=Role.VIEWER
    )
    response = await post(service, [event(mine.org, "x")], key="")
    refusal(response, 401, "UNAUTHENTICATED")
    assert response.headers["www-authenticate"] == "Bearer"
    refusal(await post(service, [event(mine.org, "x")], key="cl_not_a_key"), 401, "UNAUTHENTICATED")
    refusal(await post(service, [event(mine.org, "x")], key=viewer), 403, "FORBIDDEN")
    # Another tenant's organization is FORBIDDEN whether or not it exists, even beside one's own.
    refusal(await post(service, [event(mine.org, "x"), event(theirs.org, "y")], key=creator), 403, "FORBIDDEN")
    refusal(await post(service, [event(str(uuid.uuid4()), "y")], key=creator), 403, "FORBIDDEN")
    # The platform admin may name any organization; one that does not exist is NOT_FOUND.
    refusal(await post(service, [event(mine.org, "x"), event(str(uuid.uuid4()), "y")]), 404, "NOT_FOUND")
    refusal(await post(service, [event("not-an-id", "y")], key=creator), 400, "INVALID_INPUT", index=0)
    accepted = await post(service, [event(mine.org, "mine-1")], key=creator, ack="APPLIED")
    assert accepted.json()["results"][0]["status"] == "REJECTED"  # no credits, but it was the caller's to send
    assert await journaled(pool, mine.org) == ["mine-1"] and await journaled(pool, theirs.org) == []


async def test_requests_are_rate_limited_like_graphql(settings: Settings, pool: asyncpg.Pool, catalog: object) -> None:
    async with serving(replace(settings, rate_limit_caller="0.1/2", rate_limit_organization="0"), pool) as service:
        org = await Ledger.create(service, "Limited")
        _, key = await create_api_key(
            pool, name="k", scope="organization", organization_id=uuid.UUID(org.org), role=Role.OWNER
        )
        # A batch of many events is one request to its caller.
        for n in range(2):
            answer = await post(service, [event(org.org, f"l-{n}-{i}") for i in range(50)], key=key)
            assert answer.status_code == 200, answer.text
        limited = await post(service, [event(org.org, "l-over")], key=key)
        refusal(limited, 429, "RATE_LIMITED")
        assert 1 <= int(limited.headers["retry-after"]) <= 10
