"""Authentication end to end: API keys (shown once, hashed, revocable, last-used), signed user
tokens, partners and their sub-organizations."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import asyncpg

from graphql_api.access.tokens import issue_token, token_secret
from ledger.directory.api_keys import key_hash
from ledger.directory.members import put_member
from ledger.directory.roles import Role
from tests.conftest import Service
from tests.ledger_api import Ledger

CREATE_KEY = """
mutation($input: CreateApiKeyInput!) {
  createApiKey(input: $input) { key apiKey { id prefix name scope role organizationId lastUsedAt revokedAt } }
}"""
REVOKE_KEY = "mutation($input: RevokeApiKeyInput!) { revokeApiKey(input: $input) { id revokedAt } }"
BALANCE = "query($id: ID!) { organization(id: $id) { balance { total } } }"
VIEWER = "{ viewer { kind userId apiKeyId organizationId role partnerId memberships { organizationId role } } }"


async def _raw(service: Service, query: str, credentials: str, **variables: object) -> tuple[int, dict[str, object]]:
    headers = {"authorization": f"Bearer {credentials}"} if credentials else {}
    response = await service.client.post("/graphql", json={"query": query, "variables": variables}, headers=headers)
    return response.status_code, response.json()


def _code(body: dict[str, object]) -> str:
    errors = body["errors"]
    assert isinstance(errors, list)
    return str(errors[0]["extensions"]["code"])


async def test_an_org_key_is_shown_once_stored_hashed_used_and_revoked(service: Service, pool: asyncpg.Pool) -> None:
    org = await Ledger.create(service, "Keyed")
    await org.accepted("grantCredits", amount="10")
    created = await service.graphql(CREATE_KEY, input={"name": "backend", "organizationId": org.org, "role": "CREATOR"})
    key = created["data"]["createApiKey"]["key"]
    stored = created["data"]["createApiKey"]["apiKey"]
    assert key.startswith(stored["prefix"] + "_") and stored["role"] == "CREATOR" and stored["lastUsedAt"] is None
    row = await pool.fetchrow("SELECT * FROM api_keys WHERE id = $1", uuid.UUID(stored["id"]))
    assert bytes(row["secret_hash"]) == key_hash(key) and key not in str(dict(row))  # only the hash is kept

    status, body = await _raw(service, BALANCE, key, id=org.org)
    assert status == 200 and body["data"] == {"organization": {"balance": {"total": "10"}}}
    assert await pool.fetchval("SELECT last_used_at FROM api_keys WHERE id = $1", uuid.UUID(stored["id"])) is not None
    viewer = (await _raw(service, VIEWER, key))[1]["data"]["viewer"]  # type: ignore[index]
    assert viewer["kind"] == "ORGANIZATION_KEY" and viewer["organizationId"] == org.org and viewer["role"] == "CREATOR"

    # A wrong secret behind a real prefix, and a key that is not ours at all.
    assert (await _raw(service, BALANCE, key[:-4] + "AAAA", id=org.org))[0] == 401
    assert (await _raw(service, BALANCE, "cl_nothing", id=org.org))[0] == 401

    revoked = await service.graphql(REVOKE_KEY, input={"id": stored["id"], "organizationId": org.org})
    assert revoked["data"]["revokeApiKey"]["revokedAt"] is not None
    status, body = await _raw(service, BALANCE, key, id=org.org)
    assert status == 401 and _code(body) == "UNAUTHENTICATED"  # at once, in the process that revoked it


async def test_no_credentials_is_unauthenticated_on_every_field(service: Service) -> None:
    status, body = await _raw(service, "{ products { key } }", "")
    assert status == 200 and _code(body) == "UNAUTHENTICATED" and body["data"] is None


async def test_user_tokens_carry_identity_and_memberships_decide(service: Service, pool: asyncpg.Pool) -> None:
    org = await Ledger.create(service, "Members")
    await org.accepted("grantCredits", amount="10")
    minted = await service.graphql(
        'mutation { createUserToken(input: {userId: "ana", ttlSeconds: 600}) { token expiresAt } }'
    )
    token = minted["data"]["createUserToken"]["token"]
    assert (await _raw(service, BALANCE, token, id=org.org))[1]["errors"][0]["extensions"]["code"] == "FORBIDDEN"  # type: ignore[index]

    await put_member(pool, uuid.UUID(org.org), "ana", Role.VIEWER)
    status, body = await _raw(service, BALANCE, token, id=org.org)
    assert status == 200 and body["data"] == {"organization": {"balance": {"total": "10"}}}
    viewer = (await _raw(service, VIEWER, token))[1]["data"]["viewer"]  # type: ignore[index]
    assert viewer["userId"] == "ana" and viewer["memberships"] == [{"organizationId": org.org, "role": "VIEWER"}]
    # A viewer reads but does not spend.
    usage = """mutation($o: ID!) { recordUsage(input: {organizationId: $o, product: "sms.message", quantity: "1",
        idempotencyKey: "v1"}) { status } }"""
    assert _code((await _raw(service, usage, token, o=org.org))[1]) == "FORBIDDEN"
    # Promoted, the very same token may: roles are read per request, not baked into tokens.
    await put_member(pool, uuid.UUID(org.org), "ana", Role.CREATOR)
    assert (await _raw(service, usage, token, o=org.org))[1]["data"] == {"recordUsage": {"status": "ACCEPTED"}}

    secret = await token_secret(pool, "")
    past = datetime.now(UTC) - timedelta(hours=2)
    expired = issue_token(secret, "ana", past, timedelta(hours=1))
    assert (await _raw(service, BALANCE, expired, id=org.org))[0] == 401
    forged = issue_token(b"not the secret" * 3, "ana", datetime.now(UTC), timedelta(hours=1))
    assert (await _raw(service, BALANCE, forged, id=org.org))[0] == 401


async def test_a_partner_runs_only_its_sub_organizations(service: Service, pool: asyncpg.Pool) -> None:
    created = await service.graphql('mutation { createPartner(input: {name: "Reseller"}) { id } }')
    partner = created["data"]["createPartner"]["id"]
    key = (await service.graphql(CREATE_KEY, input={"name": "reseller", "partnerId": partner}))["data"]["createApiKey"]
    partner_key = key["key"]
    assert key["apiKey"]["scope"] == "PARTNER"
    other = await Ledger.create(service, "Not the partner's")

    made = (await _raw(service, 'mutation { createOrganization(input: {name: "Sub"}) { id } }', partner_key))[1]
    sub = made["data"]["createOrganization"]["id"]  # type: ignore[index]
    assert await pool.fetchval("SELECT partner_id FROM organizations WHERE id = $1", uuid.UUID(sub)) == uuid.UUID(
        partner
    )
    grant = (
        'mutation($o: ID!) { grantCredits(input: {organizationId: $o, amount: "5", idempotencyKey: "g"}) { status } }'
    )
    assert (await _raw(service, grant, partner_key, o=sub))[1]["data"] == {"grantCredits": {"status": "ACCEPTED"}}
    assert _code((await _raw(service, grant, partner_key, o=other.org))[1]) == "FORBIDDEN"
    # Re-creating another tenant's organization by its id is refused, not a way in.
    steal = f'mutation {{ createOrganization(input: {{id: "{other.org}", name: "Not the partner\'s"}}) {{ id name }} }}'
    assert _code((await _raw(service, steal, partner_key))[1]) == "FORBIDDEN"
    # Partners cannot make partners or admin keys.
    assert _code((await _raw(service, 'mutation { createPartner(input: {name: "X"}) { id } }', partner_key))[1]) == (
        "FORBIDDEN"
    )

    # A token the partner mints is bound to the partner's orgs, even for a user who is a member elsewhere.
    await put_member(pool, uuid.UUID(other.org), "shared-id", Role.OWNER)
    await put_member(pool, uuid.UUID(sub), "shared-id", Role.OWNER)
    mint = 'mutation { createUserToken(input: {userId: "shared-id"}) { token } }'
    token = (await _raw(service, mint, partner_key))[1]["data"]["createUserToken"]["token"]  # type: ignore[index]
    assert (await _raw(service, BALANCE, token, id=sub))[1]["data"] == {"organization": {"balance": {"total": "5"}}}
    assert _code((await _raw(service, BALANCE, token, id=other.org))[1]) == "FORBIDDEN"
    viewer = (await _raw(service, VIEWER, token))[1]["data"]["viewer"]  # type: ignore[index]
    assert viewer["memberships"] == [{"organizationId": sub, "role": "OWNER"}]
