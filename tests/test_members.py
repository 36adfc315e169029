"""The org -> team -> user hierarchy end to end: invitations accepted with user tokens, roles that
decide on the very next request, member and kit limits, the one-Owner rule, idempotent invitations,
and owners confined to their own organization."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from graphql_api.access.tokens import issue_token, token_secret
from ledger.directory.api_keys import create_api_key
from ledger.directory.invitations import token_hash
from ledger.directory.partners import create_partner
from ledger.directory.roles import Role
from tests.conftest import Service
from tests.ledger_api import Ledger

INVITATION = "id email role teamId kit status createdBy expiresAt acceptedBy token"
INVITE = f"mutation($input: InviteMemberInput!) {{ inviteMember(input: $input) {{ {INVITATION} }} }}"
ACCEPT = (
    "mutation($token: String!) { acceptInvitation(input: {token: $token}) { organizationId userId role email kit } }"
)
REVOKE = f"mutation($input: RevokeInvitationInput!) {{ revokeInvitation(input: $input) {{ {INVITATION} }} }}"
ADD = "mutation($input: AddMemberInput!) { addMember(input: $input) { userId role teamId kit } }"
UPDATE = "mutation($input: UpdateMemberInput!) { updateMember(input: $input) { userId role teamId kit } }"
REMOVE = "mutation($input: RemoveMemberInput!) { removeMember(input: $input) { userId role } }"
LIMITS = """mutation($input: SetOrganizationLimitsInput!) {
  setOrganizationLimits(input: $input) { memberLimit kitLimit members kits }
}"""
READ = "query($id: ID!) { organization(id: $id) { name } }"
MEMBERS = "query($id: ID!) { organization(id: $id) { members { userId role email teamId kit createdAt } } }"
INVITATIONS = f"""query($id: ID!, $all: Boolean!) {{
  organization(id: $id) {{ invitations(includeClosed: $all) {{ {INVITATION} }} }}
}}"""
ORG_LIMITS = "query($id: ID!) { organization(id: $id) { limits { memberLimit kitLimit members kits } } }"
USAGE = """mutation($input: RecordUsageInput!) { recordUsage(input: $input) { status } }"""


def code(body: dict[str, Any]) -> str | None:
    errors = body.get("errors")
    return None if not errors else str(errors[0]["extensions"]["code"])


def data(body: dict[str, Any], field: str) -> Any:
    assert "errors" not in body, body["errors"]
    return body["data"][field]


class People:
    """Signs user tokens for made-up user ids."""

    def __init__(self, secret: bytes) -> None:
        self.secret = secret

    def token(self, user_id: str, partner_id: uuid.UUID | None = None) -> str:
        return issue_token(self.secret, user_id, datetime.now(UTC), timedelta(hours=1), partner_id)


async def people(pool: asyncpg.Pool) -> People:
    return People(await token_secret(pool, ""))


async def org_with_owner(service: Service, name: str, owner: str) -> str:
    org = (await Ledger.create(service, name)).org
    await add(service, org, owner, "OWNER")
    return org


async def add(service: Service, org: str, user: str, role: str, **fields: Any) -> dict[str, Any]:
    body = await service.graphql(ADD, input={"organizationId": org, "userId": user, "role": role, **fields})
    return dict(data(body, "addMember"))


async def invite(service: Service, credentials: str, org: str, role: str, **fields: Any) -> dict[str, Any]:
    fields.setdefault("email", f"{uuid.uuid4().hex[:8]}@example.com")
    fields.setdefault("idempotencyKey", uuid.uuid4().hex)
    body = await service.graphql(INVITE, credentials=credentials, input={"organizationId": org, "role": role, **fields})
    return dict(data(body, "inviteMember"))


async def usage(service: Service, credentials: str, org: str) -> dict[str, Any]:
    return await service.graphql(
        USAGE,
        credentials=credentials,
        input={"organizationId": org, "product": "sms.message", "quantity": "1", "idempotencyKey": uuid.uuid4().hex},
    )


async def test_an_invited_user_accepts_and_their_role_decides(service: Service, pool: asyncpg.Pool) -> None:
    users = await people(pool)
    org = await org_with_owner(service, "Acme", "olga")
    await Ledger(service, org).accepted("grantCredits", amount="100")
    olga = users.token("olga")

    invited = await invite(service, olga, org, "CREATOR", email="  Cara@Example.COM ", kit="pro")
    assert invited["token"].startswith("inv_") and invited["status"] == "PENDING"
    assert invited["email"] == "cara@example.com" and invited["createdBy"] == "user:olga"
    row = await pool.fetchrow("SELECT * FROM invitations WHERE id = $1", uuid.UUID(invited["id"]))
    assert bytes(row["token_hash"]) == token_hash(invited["token"]) and invited["token"] not in str(dict(row))

    cara = users.token("cara")
    assert code(await service.graphql(READ, credentials=cara, id=org)) == "FORBIDDEN"  # not a member yet
    joined = data(await service.graphql(ACCEPT, credentials=cara, token=invited["token"]), "acceptInvitation")
    assert joined == {
        "organizationId": org,
        "userId": "cara",
        "role": "CREATOR",
        "email": "cara@example.com",
        "kit": "pro",
    }

    # A Creator reads and records usage, but does not manage members.
    assert data(await service.graphql(READ, credentials=cara, id=org), "organization") == {"name": "Acme"}
    assert data(await usage(service, cara, org), "recordUsage") == {"status": "ACCEPTED"}
    denied = await service.graphql(INVITE, credentials=cara, input={
        "organizationId": org, "email": "x@example.com", "role": "VIEWER", "idempotencyKey": "k",
    })  # fmt: skip
    assert code(denied) == "FORBIDDEN" and denied["data"] is None
    assert code(await service.graphql(INVITATIONS, credentials=cara, id=org, all=True)) == "FORBIDDEN"

    # A Viewer reads only.
    viewer_invitation = await invite(service, olga, org, "VIEWER")
    vic = users.token("vic")
    assert data(await service.graphql(ACCEPT, credentials=vic, token=viewer_invitation["token"]), "acceptInvitation")
    assert data(await service.graphql(READ, credentials=vic, id=org), "organization") == {"name": "Acme"}
    assert code(await usage(service, vic, org)) == "FORBIDDEN"

    members = data(await service.graphql(MEMBERS, credentials=vic, id=org), "organization")["members"]
    assert [(m["userId"], m["role"], m["kit"]) for m in members] == [
        ("olga", "OWNER", None), ("cara", "CREATOR", "pro"), ("vic", "VIEWER", None),
    ]  # fmt: skip
    # Accepted invitations are closed: listed only on request, and never with their tokens.
    assert data(await service.graphql(INVITATIONS, credentials=olga, id=org, all=False), "organization") == {
        "invitations": []
    }
    closed = data(await service.graphql(INVITATIONS, credentials=olga, id=org, all=True), "organization")
    assert [(i["status"], i["acceptedBy"], i["token"]) for i in closed["invitations"]] == [
        ("ACCEPTED", "cara", None), ("ACCEPTED", "vic", None),
    ]  # fmt: skip


async def test_removing_a_member_takes_effect_on_the_next_request(service: Service, pool: asyncpg.Pool) -> None:
    users = await people(pool)
    org = await org_with_owner(service, "Acme", "olga")
    await add(service, org, "cara", "CREATOR")
    cara = users.token("cara")
    assert code(await service.graphql(READ, credentials=cara, id=org)) is None

    removed = await service.graphql(
        REMOVE, credentials=users.token("olga"), input={"organizationId": org, "userId": "cara"}
    )
    assert data(removed, "removeMember") == {"userId": "cara", "role": "CREATOR"}
    assert code(await service.graphql(READ, credentials=cara, id=org)) == "FORBIDDEN"
    assert code(await usage(service, cara, org)) == "FORBIDDEN"
    again = await service.graphql(REMOVE, input={"organizationId": org, "userId": "cara"})
    assert code(again) == "NOT_FOUND"


async def test_expired_revoked_reused_and_unknown_tokens_fail(service: Service, pool: asyncpg.Pool) -> None:
    users = await people(pool)
    org = await org_with_owner(service, "Acme", "olga")
    olga = users.token("olga")

    expired = await invite(service, olga, org, "VIEWER", expiresInHours=1)
    await pool.execute(
        "UPDATE invitations SET created_at = now() - interval '2 hours', expires_at = now() - interval '1 hour'"
        " WHERE id = $1",
        uuid.UUID(expired["id"]),
    )
    body = await service.graphql(ACCEPT, credentials=users.token("ed"), token=expired["token"])
    assert code(body) == "INVALID_INPUT" and "expired" in body["errors"][0]["message"]

    used = await invite(service, olga, org, "VIEWER")
    assert code(await service.graphql(ACCEPT, credentials=users.token("ann"), token=used["token"])) is None
    for who in ("bob", "ann"):  # neither someone else nor the same user a second time
        body = await service.graphql(ACCEPT, credentials=users.token(who), token=used["token"])
        assert code(body) == "INVALID_INPUT" and "accepted already" in body["errors"][0]["message"]

    revoked = await invite(service, olga, org, "VIEWER")
    closed = data(await service.graphql(REVOKE, credentials=olga, input={
        "organizationId": org, "invitationId": revoked["id"],
    }), "revokeInvitation")  # fmt: skip
    assert closed["status"] == "REVOKED" and closed["token"] is None
    body = await service.graphql(ACCEPT, credentials=users.token("rex"), token=revoked["token"])
    assert code(body) == "INVALID_INPUT" and "revoked" in body["errors"][0]["message"]
    # An accepted invitation cannot be revoked (the member is removed instead).
    body = await service.graphql(REVOKE, credentials=olga, input={"organizationId": org, "invitationId": used["id"]})
    assert code(body) == "INVALID_INPUT"

    assert code(await service.graphql(ACCEPT, credentials=users.token("x"), token="inv_made-up")) == "NOT_FOUND"
    # Only a user can join: an API key, even the admin's, is refused.
    pending = await invite(service, olga, org, "VIEWER")
    assert code(await service.graphql(ACCEPT, token=pending["token"])) == "FORBIDDEN"
    assert await pool.fetchval("SELECT count(*) FROM members WHERE org_id = $1", uuid.UUID(org)) == 2


async def test_a_partner_bound_user_joins_only_that_partners_organizations(
    service: Service, pool: asyncpg.Pool
) -> None:
    users = await people(pool)
    org = await org_with_owner(service, "Platform customer", "olga")
    partner = await create_partner(pool, uuid.uuid4(), "Reseller")
    assert partner is not None
    invitation = await invite(service, users.token("olga"), org, "VIEWER")
    body = await service.graphql(ACCEPT, credentials=users.token("pat", partner.id), token=invitation["token"])
    assert code(body) == "FORBIDDEN"
    assert await pool.fetchval("SELECT accepted_at FROM invitations WHERE id = $1", uuid.UUID(invitation["id"])) is None


async def test_member_and_kit_limits(service: Service, pool: asyncpg.Pool) -> None:
    users = await people(pool)
    org = await org_with_owner(service, "Acme", "olga")
    olga = users.token("olga")
    # Only the platform sets limits.
    owner_try = await service.graphql(LIMITS, credentials=olga, input={"organizationId": org, "memberLimit": 9})
    assert code(owner_try) == "FORBIDDEN"
    limits = await service.graphql(LIMITS, input={"organizationId": org, "memberLimit": 2, "kitLimit": 1})
    assert data(limits, "setOrganizationLimits") == {"memberLimit": 2, "kitLimit": 1, "members": 1, "kits": 0}

    first = await invite(service, olga, org, "CREATOR", kit="pro")
    second = await invite(service, olga, org, "CREATOR")
    assert code(await service.graphql(ACCEPT, credentials=users.token("ann"), token=first["token"])) is None
    full = await service.graphql(ACCEPT, credentials=users.token("bob"), token=second["token"])
    assert code(full) == "LIMIT_REACHED" and "2 members" in full["errors"][0]["message"]
    direct = await service.graphql(ADD, input={"organizationId": org, "userId": "carl", "role": "VIEWER"})
    assert code(direct) == "LIMIT_REACHED"

    # A field left out stays: raising the member limit keeps the kit limit.
    raised = await service.graphql(LIMITS, input={"organizationId": org, "memberLimit": 5})
    assert data(raised, "setOrganizationLimits") == {"memberLimit": 5, "kitLimit": 1, "members": 2, "kits": 1}
    assert code(await service.graphql(ACCEPT, credentials=users.token("bob"), token=second["token"])) is None
    kitted = await invite(service, olga, org, "CREATOR", kit="pro")
    assert code(await service.graphql(ACCEPT, credentials=users.token("kim"), token=kitted["token"])) == "LIMIT_REACHED"
    giving = await service.graphql(
        UPDATE, credentials=olga, input={"organizationId": org, "userId": "bob", "kit": "pro"}
    )
    assert code(giving) == "LIMIT_REACHED"
    # Moving the kit frees the seat for someone else.
    await service.graphql(UPDATE, credentials=olga, input={"organizationId": org, "userId": "ann", "kit": None})
    assert data(await service.graphql(UPDATE, credentials=olga, input={
        "organizationId": org, "userId": "bob", "kit": "pro",
    }), "updateMember") == {"userId": "bob", "role": "CREATOR", "teamId": None, "kit": "pro"}  # fmt: skip
    read = data(await service.graphql(ORG_LIMITS, credentials=users.token("bob"), id=org), "organization")
    assert read == {"limits": {"memberLimit": 5, "kitLimit": 1, "members": 3, "kits": 1}}
    assert code(await service.graphql(LIMITS, input={"organizationId": org, "memberLimit": -1})) == "INVALID_INPUT"


async def test_concurrent_acceptances_never_pass_the_member_limit(service: Service, pool: asyncpg.Pool) -> None:
    users = await people(pool)
    org = await org_with_owner(service, "Acme", "olga")
    await service.graphql(LIMITS, input={"organizationId": org, "memberLimit": 3})
    invitations = [await invite(service, users.token("olga"), org, "VIEWER") for _ in range(8)]
    answers = await asyncio.gather(*(
        service.graphql(ACCEPT, credentials=users.token(f"user-{i}"), token=invitation["token"])
        for i, invitation in enumerate(invitations)
    ))  # fmt: skip
    assert sorted(str(code(answer)) for answer in answers) == ["LIMIT_REACHED"] * 6 + ["None"] * 2
    assert await pool.fetchval("SELECT count(*) FROM members WHERE org_id = $1", uuid.UUID(org)) == 3


async def test_an_organization_keeps_its_last_owner(service: Service, pool: asyncpg.Pool) -> None:
    users = await people(pool)
    org = await org_with_owner(service, "Acme", "olga")
    olga = users.token("olga")
    member = {"organizationId": org, "userId": "olga"}
    assert code(await service.graphql(REMOVE, credentials=olga, input=member)) == "LAST_OWNER"
    assert code(await service.graphql(UPDATE, credentials=olga, input={**member, "role": "VIEWER"})) == "LAST_OWNER"
    assert code(await service.graphql(ADD, input={**member, "role": "BILLING"})) == "LAST_OWNER"
    # Changing the last Owner's team or kit is fine; so is leaving once another Owner is there.
    assert code(await service.graphql(UPDATE, credentials=olga, input={**member, "kit": "pro"})) is None
    await add(service, org, "otto", "OWNER")
    demoted = await service.graphql(UPDATE, credentials=olga, input={**member, "role": "VIEWER"})
    assert data(demoted, "updateMember") == {"userId": "olga", "role": "VIEWER", "teamId": None, "kit": "pro"}
    assert code(await service.graphql(REMOVE, credentials=olga, input=member)) == "FORBIDDEN"  # a Viewer now
    otto = users.token("otto")
    assert code(await service.graphql(REMOVE, credentials=otto, input=member)) is None
    assert code(await service.graphql(REMOVE, credentials=otto, input={**member, "userId": "otto"})) == "LAST_OWNER"


async def test_an_invitation_retried_with_its_key_is_the_same_one(service: Service, pool: asyncpg.Pool) -> None:
    users = await people(pool)
    org = await org_with_owner(service, "Acme", "olga")
    team = await Ledger(service, org).team("Studio")
    olga = users.token("olga")
    fields = {"email": "dee@example.com", "teamId": team, "kit": "pro", "idempotencyKey": "invite-dee"}
    first = await invite(service, olga, org, "CREATOR", **fields)
    retry = await invite(service, olga, org, "CREATOR", **{**fields, "email": "DEE@example.com"})
    assert retry == first and retry["token"] is not None  # the same invitation, its token shown again
    assert await pool.fetchval("SELECT count(*) FROM invitations") == 1

    for change in ({"role": "VIEWER"}, {"kit": "basic"}, {"expiresInHours": 24}, {"email": "eve@example.com"}):
        body = await service.graphql(INVITE, credentials=olga, input={
            "organizationId": org, "role": "CREATOR", **fields, **change,
        })  # fmt: skip
        assert code(body) == "IDEMPOTENCY_CONFLICT", change

    joined = await service.graphql(ACCEPT, credentials=users.token("dee"), token=first["token"])
    assert code(joined) is None
    members = data(await service.graphql(MEMBERS, credentials=olga, id=org), "organization")["members"]
    assert {"userId": "dee", "role": "CREATOR", "teamId": team, "kit": "pro"}.items() <= members[1].items()


async def test_an_owner_of_one_org_cannot_reach_anothers_members(service: Service, pool: asyncpg.Pool) -> None:
    users = await people(pool)
    org_a = await org_with_owner(service, "A", "alice")
    org_b = await org_with_owner(service, "B", "bert")
    team_b = await Ledger(service, org_b).team("B's team")
    b_invitation = await invite(service, users.token("bert"), org_b, "VIEWER", email="secret@b.example")
    _, a_owner_key = await create_api_key(
        pool, name="a", scope="organization", organization_id=uuid.UUID(org_a), role=Role.OWNER
    )
    for alice in (users.token("alice"), a_owner_key):
        into_b = await service.graphql(INVITE, credentials=alice, input={
            "organizationId": org_b, "email": "x@example.com", "role": "OWNER", "idempotencyKey": "k",
        })  # fmt: skip
        assert code(into_b) == "FORBIDDEN" and into_b["data"] is None
        for query in (MEMBERS, READ):
            assert code(await service.graphql(query, credentials=alice, id=org_b)) == "FORBIDDEN"
        for mutation, fields in (
            (REMOVE, {"organizationId": org_b, "userId": "bert"}),
            (UPDATE, {"organizationId": org_b, "userId": "bert", "role": "VIEWER"}),
            (REVOKE, {"organizationId": org_b, "invitationId": b_invitation["id"]}),
        ):
            assert code(await service.graphql(mutation, credentials=alice, input=fields)) == "FORBIDDEN"
        # B's things named under A's own id are as unknown as made-up ones.
        with_b_team = await service.graphql(INVITE, credentials=alice, input={
            "organizationId": org_a, "email": "x@example.com", "role": "VIEWER", "idempotencyKey": "t",
            "teamId": team_b,
        })  # fmt: skip
        assert code(with_b_team) == "NOT_FOUND" and team_b not in str(with_b_team["errors"])
        revoke = await service.graphql(REVOKE, credentials=alice, input={
            "organizationId": org_a, "invitationId": b_invitation["id"],
        })  # fmt: skip
        assert code(revoke) == "NOT_FOUND"
        assert code(
            await service.graphql(REMOVE, credentials=alice, input={"organizationId": org_a, "userId": "bert"})
        ) == ("NOT_FOUND")
        listed = await service.graphql(INVITATIONS, credentials=alice, id=org_a, all=True)
        assert "secret@b.example" not in str(listed)
    b_members = data(await service.graphql(MEMBERS, id=org_b), "organization")["members"]
    assert [(m["userId"], m["role"]) for m in b_members] == [("bert", "OWNER")]
    assert (
        await pool.fetchval("SELECT revoked_at FROM invitations WHERE id = $1", uuid.UUID(b_invitation["id"])) is None
    )


async def test_inputs_are_checked(service: Service, pool: asyncpg.Pool) -> None:
    users = await people(pool)
    org = await org_with_owner(service, "Acme", "olga")
    olga = users.token("olga")
    base = {"organizationId": org, "email": "ok@example.com", "role": "VIEWER", "idempotencyKey": "k"}
    for change in (
        {"email": "not-an-email"},
        {"email": "two@@example.com"},
        {"email": "a b@example.com"},
        {"teamId": "not-a-uuid"},
        {"expiresInHours": 0},
        {"expiresInHours": 100_000},
        {"kit": ""},
        {"idempotencyKey": " "},
    ):
        body = await service.graphql(INVITE, credentials=olga, input={**base, **change})
        assert code(body) == "INVALID_INPUT", (change, body)
    body = await service.graphql(INVITE, credentials=olga, input={**base, "teamId": str(uuid.uuid4())})
    assert code(body) == "NOT_FOUND"
    body = await service.graphql(INVITE, credentials=olga, input={**base, "role": "ADMIN"})
    assert code(body) == "INVALID_INPUT"  # not a Role
    made_up = await service.graphql(ADD, input={"organizationId": str(uuid.uuid4()), "userId": "u", "role": "VIEWER"})
    assert code(made_up) == "NOT_FOUND"
    assert code(await service.graphql(ADD, input={"organizationId": org, "userId": " ", "role": "VIEWER"})) == (
        "INVALID_INPUT"
    )
    assert code(await service.graphql(UPDATE, credentials=olga, input={"organizationId": org, "userId": "nobody"})) == (
        "NOT_FOUND"
    )
