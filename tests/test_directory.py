"""The directory's rules, called directly against the real PostgreSQL (no API in between): an
organization keeps an Owner, its member and kit limits hold, creation is idempotent by id, and an
invitation is idempotent by key and accepted once."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import asyncpg
import pytest

from ledger.core.errors import Forbidden, IdempotencyConflict, InvalidCommand, LastOwner, LimitReached, NotFound
from ledger.directory import api_keys, invitations, members, organizations, partners, teams
from ledger.directory.invitations import InvitationRequest
from ledger.directory.members import KEEP, MemberChange
from ledger.directory.roles import Role

SECRET = b"directory tests"


async def _organization(pool: asyncpg.Pool, partner_id: uuid.UUID | None = None) -> uuid.UUID:
    created = await organizations.create_organization(pool, uuid.uuid4(), "Acme", partner_id)
    assert created is not None
    return created.id


def _request(org: uuid.UUID, key: str = "invite-1", **changes: object) -> InvitationRequest:
    fields: dict[str, object] = {
        "organization_id": org, "email": "ana@example.com", "role": Role.CREATOR, "team_id": None, "kit": None,
        "idempotency_key": key, "created_by": "user:owner", "expires_in": timedelta(hours=24),
    }  # fmt: skip
    fields.update(changes)
    return InvitationRequest(**fields)  # type: ignore[arg-type]


async def test_the_last_owner_cannot_be_demoted_or_removed(pool: asyncpg.Pool) -> None:
    org = await _organization(pool)
    await members.add_member(pool, org, "owner", Role.OWNER, email=None, team_id=None, kit=None)
    with pytest.raises(LastOwner, match="keeps at least one Owner"):
        await members.change_member(pool, org, "owner", MemberChange(role=Role.VIEWER))
    with pytest.raises(LastOwner):
        await members.remove_member(pool, org, "owner")
    with pytest.raises(LastOwner):
        await members.add_member(pool, org, "owner", Role.BILLING, email=None, team_id=None, kit=None)
    # With a second Owner, either may go.
    await members.add_member(pool, org, "second", Role.OWNER, email=None, team_id=None, kit=None)
    demoted = await members.change_member(pool, org, "owner", MemberChange(role=Role.VIEWER))
    assert demoted.role is Role.VIEWER
    with pytest.raises(LastOwner):
        await members.remove_member(pool, org, "second")
    assert (await members.remove_member(pool, org, "owner")).user_id == "owner"
    with pytest.raises(NotFound, match="member not found"):
        await members.remove_member(pool, org, "owner")


async def test_concurrent_demotions_keep_one_owner(pool: asyncpg.Pool) -> None:
    """Under the members lock, two Owners demoting each other at once: one wins, one is refused."""
    org = await _organization(pool)
    for user in ("a", "b"):
        await members.add_member(pool, org, user, Role.OWNER, email=None, team_id=None, kit=None)
    results = await asyncio.gather(
        *(members.change_member(pool, org, user, MemberChange(role=Role.VIEWER)) for user in ("a", "b")),
        return_exceptions=True,
    )
    assert sorted(type(result).__name__ for result in results) == ["LastOwner", "Member"]
    assert await members.owner_count(pool, org) == 1


async def test_member_and_kit_limits(pool: asyncpg.Pool) -> None:
    org = await _organization(pool)
    limits = await members.set_limits(pool, org, member_limit=2, kit_limit=1)
    assert (limits.member_limit, limits.kit_limit, limits.members, limits.kits) == (2, 1, 0, 0)
    await members.add_member(pool, org, "owner", Role.OWNER, email=None, team_id=None, kit="seat-1")
    with pytest.raises(LimitReached, match="its limit of 1 kits assigned"):
        await members.add_member(pool, org, "ana", Role.VIEWER, email=None, team_id=None, kit="seat-2")
    await members.add_member(pool, org, "ana", Role.VIEWER, email=None, team_id=None, kit=None)
    with pytest.raises(LimitReached, match="its limit of 2 members"):
        await members.add_member(pool, org, "bo", Role.VIEWER, email=None, team_id=None, kit=None)
    with pytest.raises(LimitReached, match="kits assigned"):
        await members.change_member(pool, org, "ana", MemberChange(kit="seat-2"))
    # A member already in (or already holding a kit) is not counted again; KEEP leaves a limit as is.
    await members.add_member(pool, org, "ana", Role.CREATOR, email=None, team_id=None, kit=None)
    raised = await members.set_limits(pool, org, member_limit=KEEP, kit_limit=None)
    assert (raised.member_limit, raised.kit_limit, raised.kits) == (2, None, 1)


async def test_a_team_must_be_the_organizations_own(pool: asyncpg.Pool) -> None:
    org, other = await _organization(pool), await _organization(pool)
    theirs = await teams.create_team(pool, other, uuid.uuid4(), "Theirs")
    with pytest.raises(NotFound, match="team not found"):
        await members.add_member(pool, org, "ana", Role.OWNER, email=None, team_id=theirs.id, kit=None)
    ours = await teams.create_team(pool, org, uuid.uuid4(), "Ours")
    joined = await members.add_member(pool, org, "ana", Role.OWNER, email=None, team_id=ours.id, kit=None)
    assert joined.team_id == ours.id
    moved = await members.change_member(pool, org, "ana", MemberChange(team_id=None))
    assert (moved.team_id, moved.role) == (None, Role.OWNER)


async def test_creation_is_idempotent_by_id(pool: asyncpg.Pool) -> None:
    org = await _organization(pool)
    team_id = uuid.uuid4()
    first = await teams.create_team(pool, org, team_id, "Research")
    assert await teams.create_team(pool, org, team_id, "Research") == first
    with pytest.raises(IdempotencyConflict, match="a team with this id exists with another name"):
        await teams.create_team(pool, org, team_id, "Sales")
    partner_id = uuid.uuid4()
    partner = await partners.create_partner(pool, partner_id, "Reseller")
    assert await partners.create_partner(pool, partner_id, "Reseller") == partner
    with pytest.raises(IdempotencyConflict, match="a partner with this id exists with another name"):
        await partners.create_partner(pool, partner_id, "Other")
    stored = (await organizations.organizations_by_ids(pool, [org]))[org]
    assert await organizations.create_organization(pool, org, "Acme") is None
    assert organizations.same_organization(stored, "Acme", None) == stored
    with pytest.raises(IdempotencyConflict, match="an organization with this id exists with another name"):
        organizations.same_organization(stored, "Acme", partner_id)


async def test_an_invitation_is_idempotent_by_key(pool: asyncpg.Pool) -> None:
    org = await _organization(pool)
    first = await invitations.invite(pool, _request(org), SECRET)
    assert first.token is not None and first.token.startswith(invitations.TOKEN_MARK)
    again = await invitations.invite(pool, _request(org), SECRET)
    assert again == first
    for changed in ({"email": "bo@example.com"}, {"role": Role.OWNER}, {"expires_in": timedelta(hours=25)}):
        with pytest.raises(IdempotencyConflict, match="used for another invitation"):
            await invitations.invite(pool, _request(org, **changed), SECRET)
    # After the signing secret changed, a retry answers the invitation without a token.
    assert (await invitations.invite(pool, _request(org), b"another secret")).token is None
    assert (await invitations.invite(pool, _request(org, "invite-2"), SECRET)).invitation.id != first.invitation.id


async def test_an_invitation_is_accepted_once_within_the_limits(pool: asyncpg.Pool) -> None:
    org = await _organization(pool)
    await members.set_limits(pool, org, member_limit=1, kit_limit=KEEP)
    invited = await invitations.invite(pool, _request(org), SECRET)
    assert invited.token is not None
    with pytest.raises(NotFound, match="no invitation has this token"):
        await invitations.accept_invitation(pool, "not-a-token", "ana", None)
    joined = await invitations.accept_invitation(pool, invited.token, "ana", None)
    assert (joined.role, joined.email) == (Role.CREATOR, "ana@example.com")
    with pytest.raises(InvalidCommand, match="accepted already"):
        await invitations.accept_invitation(pool, invited.token, "bo", None)
    with pytest.raises(InvalidCommand, match="accepted already: remove the member"):
        await invitations.revoke_invitation(pool, org, invited.invitation.id)
    second = await invitations.invite(pool, _request(org, "invite-2", email="bo@example.com"), SECRET)
    assert second.token is not None
    with pytest.raises(LimitReached, match="its limit of 1 members"):
        await invitations.accept_invitation(pool, second.token, "bo", None)
    revoked = await invitations.revoke_invitation(pool, org, second.invitation.id)
    assert (await invitations.revoke_invitation(pool, org, second.invitation.id)).revoked_at == revoked.revoked_at
    with pytest.raises(InvalidCommand, match="was revoked"):
        await invitations.accept_invitation(pool, second.token, "bo", None)
    with pytest.raises(NotFound, match="invitation not found"):
        await invitations.revoke_invitation(pool, org, uuid.uuid4())


async def test_a_partners_user_joins_only_its_partners_organizations(pool: asyncpg.Pool) -> None:
    partner_p = await partners.create_partner(pool, uuid.uuid4(), "P")
    partner_q = await partners.create_partner(pool, uuid.uuid4(), "Q")
    org = await _organization(pool, partner_p.id)
    invited = await invitations.invite(pool, _request(org), SECRET)
    assert invited.token is not None
    with pytest.raises(Forbidden, match="only in its partner's organizations"):
        await invitations.accept_invitation(pool, invited.token, "ana", partner_q.id)
    assert (await invitations.accept_invitation(pool, invited.token, "ana", partner_p.id)).user_id == "ana"
    second = await invitations.invite(pool, _request(org, "invite-2"), SECRET)
    assert second.token is not None
    with pytest.raises(InvalidCommand, match="you are a member of this organization already"):
        await invitations.accept_invitation(pool, second.token, "ana", partner_p.id)


async def test_api_keys_are_revoked_only_in_their_organization(pool: asyncpg.Pool) -> None:
    org, other = await _organization(pool), await _organization(pool)
    stored, key = await api_keys.create_api_key(
        pool, name="ci", scope="organization", organization_id=org, role=Role.CREATOR
    )
    assert await api_keys.find_api_key(pool, key) == stored
    with pytest.raises(NotFound, match="API key not found"):
        await api_keys.revoke_api_key(pool, stored.id, other)
    revoked = await api_keys.revoke_api_key(pool, stored.id, org)
    assert revoked.revoked_at is not None and await api_keys.find_api_key(pool, key) is None
    with pytest.raises(NotFound, match="partner not found"):
        await api_keys.create_partner_key(pool, "p", uuid.uuid4())
