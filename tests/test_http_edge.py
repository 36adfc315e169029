"""The edge of /graphql: every malformed request gets the API's JSON error with a code (never a 500),
a caller without credentials costs nothing, and a document's cost is refused before it is paid."""

from __future__ import annotations

import json
import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
import websockets
from graphql import FieldNode, FragmentSpreadNode, InlineFragmentNode, OperationDefinitionNode, Visitor, parse, visit

from graphql_api.access.tokens import issue_token
from graphql_api.edge.query_cost import document_shape
from ledger.constants import query_selections_max
from ledger.directory.api_keys import create_api_key
from ledger.directory.roles import Role
from tests.conftest import Service
from tests.ledger_api import Ledger

# 1,000 copies of one field: within the token and alias limits, quadratic to validate.
DUPLICATE_FIELDS = "{ " + " ".join(["viewer { kind }"] * 1000) + " }"
ORG_METER = "subscription($org: ID!) { creditMeter(organizationId: $org) { total } }"


async def _post(service: Service, content: bytes | str, credentials: str | None = None) -> httpx.Response:
    credentials = service.admin_key if credentials is None else credentials
    headers = {"content-type": "application/json"}
    if credentials:
        headers["authorization"] = f"Bearer {credentials}"
    return await service.client.post("/graphql", content=content, headers=headers)


def _code(response: httpx.Response) -> str:
    body = response.json()
    assert body["data"] is None, body
    (error,) = body["errors"]
    code: str = error["extensions"]["code"]
    return code


def _query(query: str, **fields: Any) -> str:
    return json.dumps({"query": query, **fields})


async def test_variables_nested_100000_deep_are_a_bad_request(service: Service) -> None:
    deep = '{"query": "{ products { key } }", "variables": {"v": ' + "[" * 100_000 + "]" * 100_000 + "}}"
    response = await _post(service, deep)
    assert response.status_code == 400 and _code(response) == "BAD_REQUEST", response.text
    # Just past the bound, where json.loads itself would have no trouble: refused all the same.
    within_recursion = '{"query": "{ products { key } }", "variables": {"v": ' + "[" * 40 + "]" * 40 + "}}"
    response = await _post(service, within_recursion)
    assert response.status_code == 400 and "nested deeper" in response.json()["errors"][0]["message"]


async def test_a_body_that_is_not_utf8_is_a_bad_request(service: Service) -> None:
    response = await _post(service, b'{"query": "{ products { key } }", "x": "\xff\xfe"}')
    assert response.status_code == 400 and _code(response) == "BAD_REQUEST", response.text


@pytest.mark.parametrize("body", ["5", "null", '"x"', "true"])
async def test_json_that_is_not_an_object_is_a_bad_request(service: Service, body: str) -> None:
    response = await _post(service, body)
    assert response.status_code == 400 and _code(response) == "BAD_REQUEST", response.text


async def test_a_subscription_over_post_is_a_bad_request_not_a_bug(
    service: Service, caplog: pytest.LogCaptureFixture
) -> None:
    org = await Ledger.create(service, "Posted")
    with caplog.at_level(logging.ERROR):
        response = await _post(service, _query(ORG_METER, variables={"org": org.org}))
    assert response.status_code == 400 and _code(response) == "BAD_REQUEST", response.text
    assert "WebSocket" in response.json()["errors"][0]["message"]
    assert [record for record in caplog.records if record.levelno >= logging.ERROR] == []


async def test_a_mutation_over_get_is_a_bad_request(service: Service) -> None:
    response = await service.client.get(
        "/graphql",
        params={"query": 'mutation { createOrganization(input: {name: "by GET"}) { id } }'},
        headers={"authorization": f"Bearer {service.admin_key}"},
    )
    assert response.status_code == 400 and _code(response) == "BAD_REQUEST", response.text


async def test_two_operations_without_operation_name_run_neither(service: Service, pool: asyncpg.Pool) -> None:
    document = 'query Read { products { key } } mutation Write { createOrganization(input: {name: "Two"}) { id } }'
    refused = await _post(service, _query(document))
    assert refused.status_code == 200 and _code(refused) == "GRAPHQL_VALIDATION_FAILED", refused.text
    assert "operationName" in refused.json()["errors"][0]["message"]
    assert await pool.fetchval("SELECT count(*) FROM organizations WHERE name = 'Two'") == 0
    named = (await _post(service, _query(document, operationName="Write"))).json()
    assert "errors" not in named and named["data"]["createOrganization"]["id"], named


async def test_too_many_selections_are_refused_before_validation(service: Service) -> None:
    response = await _post(service, _query(DUPLICATE_FIELDS))
    assert response.status_code == 200 and _code(response) == "GRAPHQL_VALIDATION_FAILED", response.text
    assert f"more than {query_selections_max} selections" in response.json()["errors"][0]["message"]
    # Just within the limit, the same field answers.
    fine = "{ " + " ".join(f"a{i}: viewer {{ kind }}" for i in range(20)) + " " + "viewer { kind } " * 200 + "}"
    assert "errors" not in (await _post(service, _query(fine))).json()


async def test_a_caller_without_credentials_is_refused_before_anything_is_parsed(service: Service) -> None:
    for body in (_query(DUPLICATE_FIELDS), _query("{ not even GraphQL ((("), "{not json"):
        response = await _post(service, body, credentials="")
        assert response.status_code == 200 and _code(response) == "UNAUTHENTICATED", response.text
    # GraphiQL's page needs no credentials (it sends them with each query it runs).
    page = await service.client.get("/graphql", headers={"accept": "text/html"})
    assert page.status_code == 200 and "html" in page.headers["content-type"]


async def test_unknown_and_revoked_credentials_are_refused_before_parsing(service: Service, pool: asyncpg.Pool) -> None:
    stored, key = await create_api_key(pool, name="soon revoked", scope="admin")
    await pool.execute("UPDATE api_keys SET revoked_at = now() WHERE id = $1", stored.id)
    for credentials in (key, "cl_unknown_secret", "not-a-token"):
        response = await _post(service, _query(DUPLICATE_FIELDS), credentials=credentials)
        assert response.status_code == 401 and _code(response) == "UNAUTHENTICATED", response.text


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
async def test_other_methods_get_a_json_405(service: Service, method: str) -> None:
    response = await service.client.request(
        method, "/graphql", content=_query("{ products { key } }"), headers={"content-type": "application/json"}
    )
    assert response.status_code == 405 and _code(response) == "METHOD_NOT_ALLOWED", response.text
    assert response.headers["allow"] == "GET, POST"


async def _closed_with(service: Service, credentials: str) -> tuple[int, str]:
    url = service.url.replace("http", "ws") + "/graphql"
    async with websockets.connect(url, subprotocols=["graphql-transport-ws"]) as socket:  # type: ignore[list-item]
        payload = {"authorization": f"Bearer {credentials}"}
        await socket.send(json.dumps({"type": "connection_init", "payload": payload}))
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await socket.recv()
    received = closed.value.rcvd
    assert received is not None
    return received.code, received.reason


async def test_refused_credentials_close_a_websocket_as_unauthenticated(service: Service, pool: asyncpg.Pool) -> None:
    org = await Ledger.create(service, "Sockets")
    stored, key = await create_api_key(
        pool, name="revoked", scope="organization", organization_id=uuid.UUID(org.org), role=Role.VIEWER
    )
    await pool.execute("UPDATE api_keys SET revoked_at = now() WHERE id = $1", stored.id)
    forged = issue_token(b"not the secret" * 3, "ana", datetime.now(UTC), timedelta(hours=1))
    for credentials in (key, forged, "cl_unknown_secret"):
        assert await _closed_with(service, credentials) == (4401, "UNAUTHENTICATED")


async def test_a_websocket_subscribe_is_bounded_like_http(service: Service) -> None:
    url = service.url.replace("http", "ws") + "/graphql"
    async with websockets.connect(url, subprotocols=["graphql-transport-ws"]) as socket:  # type: ignore[list-item]
        payload = {"authorization": f"Bearer {service.admin_key}"}
        await socket.send(json.dumps({"type": "connection_init", "payload": payload}))
        assert json.loads(await socket.recv())["type"] == "connection_ack"
        await socket.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": DUPLICATE_FIELDS}}))
        message = json.loads(await socket.recv())
        assert message["type"] == "error" and message["id"] == "1", message
        assert message["payload"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
        # The connection goes on.
        await socket.send(json.dumps({"id": "2", "type": "subscribe", "payload": {"query": "{ products { key } }"}}))
        assert json.loads(await socket.recv())["type"] == "next"


def _selections_and_operations(document: str) -> tuple[int, int]:
    counts = [0, 0]

    class Count(Visitor):
        def enter(self, node: object, *_: object) -> None:
            if isinstance(node, (FieldNode, FragmentSpreadNode, InlineFragmentNode)):
                counts[0] += 1
            elif isinstance(node, OperationDefinitionNode):
                counts[1] += 1

    visit(parse(document), Count())
    return counts[0], counts[1]


@pytest.mark.parametrize(
    "document",
    [
        "{ a b { c } }",
        'query Q($x: In = {a: {b: 1}}) @d(x: 1) { a: b(x: {y: "{ c d }"}) @skip(if: $x) { on ... on T { z } ...F '
        "... @include(if: true) { w } ... { v } } } fragment F on T @d { q r: s } mutation { m }",
        'subscription S { x } query { y(s: """ { } """) } { z }  # { a b c }',
        DUPLICATE_FIELDS,
    ],
)
def test_the_token_count_of_selections_is_the_parsers(document: str) -> None:
    shape = document_shape(document, selections_max=10_000, tokens_max=10_000)
    assert shape is not None and (shape.selections, shape.operations) == _selections_and_operations(document)
