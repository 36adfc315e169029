"""Hardening at the edge: rate limits per caller and per organization (GCRA in Redis), the request
size limit, no query batching, text PostgreSQL cannot store, introspection switchable off."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import asyncpg
import httpx
import redis.asyncio as redis
import uvicorn

from graphql_api.app import create_app
from ledger.directory.api_keys import create_api_key
from ledger.directory.organizations import create_organization
from ledger.directory.roles import Role
from ledger.runtime.settings import Settings
from tests.conftest import Service, _free_port
from tests.ledger_api import Ledger

CREATE_TEAM = "mutation($o: ID!, $n: String!) { createTeam(input: {organizationId: $o, name: $n}) { id } }"


@contextlib.asynccontextmanager
async def serving(settings: Settings, **changes: Any) -> AsyncIterator[httpx.AsyncClient]:
    """The real app with other settings, on its own port."""
    port = _free_port()
    app = create_app(replace(settings, port=port, **changes))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
        await asyncio.sleep(0.01)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            yield client
    finally:
        server.should_exit = True
        await task


async def _post(client: httpx.AsyncClient, key: str, query: str, **variables: Any) -> dict[str, Any]:
    response = await client.post(
        "/graphql", json={"query": query, "variables": variables}, headers={"authorization": f"Bearer {key}"}
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _org_with_key(pool: asyncpg.Pool, name: str) -> tuple[uuid.UUID, str]:
    org = (await create_organization(pool, uuid.uuid4(), name)).id
    _, key = await create_api_key(pool, name=name, scope="organization", organization_id=org, role=Role.OWNER)
    return org, key


async def test_a_callers_limit_refuses_with_retry_after_and_changes_nothing(
    settings: Settings, pool: asyncpg.Pool, redis_client: redis.Redis
) -> None:
    org, key = await _org_with_key(pool, "Limited")
    async with serving(settings, rate_limit_caller="0.2/3", rate_limit_organization="0") as client:
        for n in range(3):
            assert "errors" not in await _post(client, key, CREATE_TEAM, o=str(org), n=f"team {n}")
        refused = await _post(client, key, CREATE_TEAM, o=str(org), n="one too many")
        (error,) = refused["errors"]
        assert error["extensions"]["code"] == "RATE_LIMITED" and refused["data"] is None
        wait_ms = error["extensions"]["retryAfterMs"]
        assert 0 < wait_ms <= 5000
        assert await pool.fetchval("SELECT count(*) FROM teams WHERE org_id = $1", org) == 3  # nothing done
        await asyncio.sleep(wait_ms / 1000 + 0.05)
        assert "errors" not in await _post(client, key, CREATE_TEAM, o=str(org), n="after the wait")
        # The refused request was not charged: right after, the limit is spent again, not doubly.
        again = await _post(client, key, CREATE_TEAM, o=str(org), n="spent")
        assert again["errors"][0]["extensions"]["retryAfterMs"] <= 5000


async def test_an_organizations_limit_is_shared_by_its_callers_and_no_one_elses(
    settings: Settings, pool: asyncpg.Pool, redis_client: redis.Redis
) -> None:
    org, first = await _org_with_key(pool, "Shared")
    _, second = await create_api_key(pool, name="second", scope="organization", organization_id=org, role=Role.OWNER)
    other, other_key = await _org_with_key(pool, "Elsewhere")
    query = "query($id: ID!) { organization(id: $id) { name } }"
    async with serving(settings, rate_limit_caller="0", rate_limit_organization="0.2/3") as client:
        for key in (first, second, first):
            assert "errors" not in await _post(client, key, query, id=str(org))
        refused = await _post(client, second, query, id=str(org))
        assert refused["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
        assert (await _post(client, other_key, query, id=str(other)))["data"] == {"organization": {"name": "Elsewhere"}}


async def test_a_query_of_many_root_fields_is_charged_once(
    settings: Settings, pool: asyncpg.Pool, redis_client: redis.Redis
) -> None:
    # A query's root fields resolve concurrently; five aliases are still one request to the caller
    # and to the org. One per ten seconds, bursts of two: no refill during the test.
    org, key = await _org_with_key(pool, "Aliased")
    query = "query($id: ID!) { " + " ".join(f"a{i}: organization(id: $id) {{ name }}" for i in range(5)) + " }"
    async with serving(settings, rate_limit_caller="0.1/2", rate_limit_organization="0.1/2") as client:
        for _ in range(2):
            answered = await _post(client, key, query, id=str(org))
            assert "errors" not in answered and len(answered["data"]) == 5, answered
        refused = await _post(client, key, query, id=str(org))
        assert {error["extensions"]["code"] for error in refused["errors"]} == {"RATE_LIMITED"}


async def test_bodies_over_the_limit_get_413(service: Service) -> None:
    padding = "x" * (2 * 1024 * 1024)
    response = await service.client.post(
        "/graphql",
        json={"query": "{ products { key } }", "variables": {"padding": padding}},
        headers={"authorization": f"Bearer {service.admin_key}"},
    )
    assert response.status_code == 413
    assert response.json()["errors"][0]["extensions"]["code"] == "REQUEST_TOO_LARGE"
    # A full recordUsageBatch (1,000 events) fits with room to spare.
    events = [
        {"organizationId": str(uuid.uuid4()), "product": "gpt-4o.input-tokens", "quantity": "123456",
         "idempotencyKey": f"event-{uuid.uuid4()}", "teamId": str(uuid.uuid4()), "userId": "user-0123456789",
         "dimensions": [{"name": "model", "value": "gpt-4o"}]}
        for _ in range(1000)
    ]  # fmt: skip
    query = "mutation($e: [UsageEventInput!]!) { recordUsageBatch(input: {events: $e}) { status } }"
    response = await service.client.post(
        "/graphql",
        json={"query": query, "variables": {"e": events}},
        headers={"authorization": f"Bearer {service.admin_key}"},
    )
    assert len(response.request.content) < service.settings.max_request_bytes // 2
    # Past the size check: refused for what it says (organizations that do not exist), not its size.
    assert response.status_code == 200 and response.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"


async def test_query_batches_and_malformed_bodies_are_refused_with_a_code(service: Service) -> None:
    headers = {"authorization": f"Bearer {service.admin_key}"}
    batch = [{"query": "{ products { key } }"}, {"query": "{ products { key } }"}]
    for body in (json.dumps(batch), "{not json", json.dumps({"variables": {}})):
        response = await service.client.post(
            "/graphql", content=body, headers=headers | {"content-type": "application/json"}
        )
        assert response.status_code == 400, response.text
        assert response.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST", response.text


async def test_text_postgresql_cannot_store_is_invalid_input_and_stalls_nothing(service: Service) -> None:
    """U+0000 or a lone surrogate in a name reaches no table; in a ledger command either would fail
    every batch it is in."""

    async def send(query: str, **variables: Any) -> dict[str, Any]:
        # Escaped JSON (what a client sends for a lone surrogate): httpx would not encode one.
        body = json.dumps({"query": query, "variables": variables})
        headers = {"authorization": f"Bearer {service.admin_key}", "content-type": "application/json"}
        answer: dict[str, Any] = (await service.client.post("/graphql", content=body, headers=headers)).json()
        return answer

    create = "mutation($n: String!) { createOrganization(input: {name: $n}) { id } }"
    for name in ("a\x00b", "\ud800"):
        refused = await send(create, n=name)
        assert refused["errors"][0]["extensions"]["code"] == "INVALID_INPUT", refused
    org = await Ledger.create(service, "Nul")
    await org.accepted("grantCredits", amount="10")
    fields = (
        {"userId": "a\x00b"}, {"idempotencyKey": "k\x00"}, {"dimensions": [{"name": "m", "value": "\x00"}]},
        {"userId": "\ud800"}, {"idempotencyKey": "\udfff"},  # lone surrogates: no UTF-8 at all
    )  # fmt: skip
    usage = "mutation($input: RecordUsageInput!) { recordUsage(input: $input) { status } }"
    for field in fields:
        body = await send(
            usage,
            input={"organizationId": org.org, "product": "sms.message", "quantity": "1", "idempotencyKey": "k"} | field,
        )
        assert body["errors"][0]["extensions"]["code"] == "INVALID_INPUT", body
    alert = {"organizationId": org.org, "kind": "LOW_BALANCE", "threshold": "1", "idempotencyKey": "\ud800"}
    body = await send("mutation($input: SetAlertInput!) { setAlert(input: $input) { status } }", input=alert)
    assert body["errors"][0]["extensions"]["code"] == "INVALID_INPUT", body
    await org.accepted("recordUsage", product="sms.message", quantity="1")  # the partition goes on


async def test_introspection_can_be_switched_off(service: Service, settings: Settings, pool: asyncpg.Pool) -> None:
    introspect = "{ __schema { queryType { name } } }"
    assert (await service.graphql(introspect))["data"] == {"__schema": {"queryType": {"name": "Query"}}}
    async with serving(settings, introspection=False, graphiql=False) as client:
        refused = await _post(client, service.admin_key, introspect)
        assert refused["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
        assert "errors" not in await _post(client, service.admin_key, "{ products { key } }")
        assert (await client.get("/graphql", headers={"accept": "text/html"})).status_code == 404
