"""Invitations, members and organization limits: written at once in transactions that lock the
organization's members, so the limits and the last Owner hold under concurrent requests."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from uuid import UUID

import asyncpg
import strawberry

from graphql_api.access.authorize import Authorize, nowhere
from graphql_api.access.invitations import (
    TOKEN_MARK,
    InvitationStatus,
    create_invitation,
    invitation,
    invitation_by_key,
    invitation_for_token,
    invitation_token,
    mark_accepted,
    revoke_invitation,
    token_hash,
)
from graphql_api.access.members import Member as DomainMember
from graphql_api.access.members import (
    limits_by_orgs,
    lock_members,
    member,
    owner_count,
    put_member,
    remove_member,
    set_limits,
    update_member,
)
from graphql_api.access.policy import Permission
from graphql_api.access.principal import Principal, PrincipalKind
from graphql_api.context import Info
from graphql_api.enums import Role
from graphql_api.errors import ApiError, invalid, not_found
from graphql_api.input_types.members import (
    AcceptInvitationInput,
    AddMemberInput,
    InviteMemberInput,
    RemoveMemberInput,
    RevokeInvitationInput,
    SetOrganizationLimitsInput,
    UpdateMemberInput,
)
from graphql_api.inputs import (
    NAME_LENGTH_MAX,
    load_organization,
    parse_id,
    printable,
)
from graphql_api.types.members import Invitation, Member, OrganizationLimits
from ledger.core.errors import ErrorCode
from ledger.store.teams import team

EMAIL_LENGTH_MAX = 254


KIT_LENGTH_MAX = 100


KEY_LENGTH_MAX = 200


invitation_hours_max = 30 * 24


# A shape check, not a proof of delivery: the integrator sends the invitation.
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def _email(value: str) -> str:
    email = value.strip().lower()
    if len(email) > EMAIL_LENGTH_MAX or not email.isprintable() or not _EMAIL.fullmatch(email):
        raise invalid("email is not an email address")
    return email


def _kit(value: str | None) -> str | None:
    return None if value is None else printable(value, "kit", KIT_LENGTH_MAX)


def _user_id(value: str) -> str:
    return printable(value, "userId", NAME_LENGTH_MAX)


async def _team(info: Info, organization_id: UUID, value: strawberry.ID | None) -> UUID | None:
    """The team, which must be the org's: another org's team is as unknown as a made-up id."""
    if value is None:
        return None
    team_id = parse_id(value, "teamId")
    if await team(info.context.resources.pool, organization_id, team_id) is None:
        raise not_found("team")
    return team_id


def _inviter(principal: Principal) -> str:
    return f"user:{principal.id}" if principal.kind is PrincipalKind.USER else f"api_key:{principal.id}"


def _limit(value: int | None, what: str) -> int | None:
    if value is not None and value < 0:
        raise invalid(f"{what} must be 0 or more, or null for unlimited")
    return value


async def _within_limits(
    connection: asyncpg.Connection, organization_id: UUID, joining: bool, taking_kit: bool
) -> None:
    """Refuse a new member past the member limit, or a new kit holder past the kit limit."""
    limits = (await limits_by_orgs(connection, [organization_id]))[organization_id]
    if joining and limits.member_limit is not None and limits.members >= limits.member_limit:
        raise ApiError(ErrorCode.LIMIT_REACHED, f"the organization has its limit of {limits.member_limit} members")
    if taking_kit and limits.kit_limit is not None and limits.kits >= limits.kit_limit:
        raise ApiError(ErrorCode.LIMIT_REACHED, f"the organization has its limit of {limits.kit_limit} kits assigned")


async def _keep_an_owner(connection: asyncpg.Connection, existing: DomainMember, role: Role | None) -> None:
    """Refuse to demote (role) or remove (None) an organization's last Owner."""
    demoted = existing.role is Role.OWNER and role is not Role.OWNER
    if demoted and await owner_count(connection, existing.organization_id) <= 1:
        raise ApiError(
            ErrorCode.LAST_OWNER, "an organization keeps at least one Owner: make another member Owner first"
        )


@strawberry.type
class MemberMutations:
    @strawberry.mutation(
        extensions=[Authorize(Permission.MANAGE_MEMBERS)],
        description="Invite someone into an organization. The answer's token is the invitee's to accept with.",
    )
    async def invite_member(self, info: Info, input: InviteMemberInput) -> Invitation:
        organization_id = parse_id(input.organization_id, "organizationId")
        email = _email(input.email)
        kit = _kit(input.kit)
        key = printable(input.idempotency_key, "idempotencyKey", KEY_LENGTH_MAX)
        if not 1 <= input.expires_in_hours <= invitation_hours_max:
            raise invalid(f"expiresInHours must be 1 to {invitation_hours_max}")
        expires_in = timedelta(hours=input.expires_in_hours)
        await load_organization(info, organization_id)
        team_id = await _team(info, organization_id, input.team_id)
        pool = info.context.resources.pool
        secret = info.context.resources.authenticator.token_secret
        invitation_id = uuid.uuid4()
        token = invitation_token(secret, invitation_id)
        created = await create_invitation(
            pool, id=invitation_id, organization_id=organization_id, email=email, role=input.role, team_id=team_id,
            kit=kit, token=token, idempotency_key=key, created_by=_inviter(info.context.principal),
            expires_in=expires_in,
        )  # fmt: skip
        now = datetime.now(UTC)
        if created is not None:
            return Invitation.from_domain(created, now, token)
        existing = await invitation_by_key(pool, organization_id, key)
        if existing is None or (existing.email, existing.role, existing.team_id, existing.kit) != (
            email, input.role, team_id, kit,
        ) or existing.expires_at - existing.created_at != expires_in:  # fmt: skip
            raise ApiError(ErrorCode.IDEMPOTENCY_CONFLICT, "this idempotency key was used for another invitation")
        # The same token again; none if the signing secret changed since (it could not be accepted).
        token = invitation_token(secret, existing.id)
        return Invitation.from_domain(existing, now, token if token_hash(token) == existing.token_hash else None)

    @strawberry.mutation(
        extensions=[Authorize(Permission.MANAGE_MEMBERS)],
        description="Revoke a pending invitation. Revoking a revoked one answers it as it is.",
    )
    async def revoke_invitation(self, info: Info, input: RevokeInvitationInput) -> Invitation:
        organization_id = parse_id(input.organization_id, "organizationId")
        invitation_id = parse_id(input.invitation_id, "invitationId")
        pool = info.context.resources.pool
        revoked = await revoke_invitation(pool, organization_id, invitation_id)
        if revoked is None:
            if await invitation(pool, organization_id, invitation_id) is None:
                raise not_found("invitation")
            raise invalid("this invitation was accepted already: remove the member with removeMember instead")
        return Invitation.from_domain(revoked, datetime.now(UTC))

    @strawberry.mutation(
        extensions=[Authorize(Permission.ACCEPT_INVITATION, nowhere)],
        description=(
            "Join the invitation's organization as the signed-in user (a user token; API keys are FORBIDDEN), "
            "with its role, team and kit. A token works once, until it expires or is revoked."
        ),
    )
    async def accept_invitation(self, info: Info, input: AcceptInvitationInput) -> Member:
        principal = info.context.principal
        token = input.token.strip()
        if not token.startswith(TOKEN_MARK):
            raise ApiError(ErrorCode.NOT_FOUND, "no invitation has this token")
        async with info.context.resources.pool.acquire() as connection, connection.transaction():
            found = await invitation_for_token(connection, token)
            if found is None:
                raise ApiError(ErrorCode.NOT_FOUND, "no invitation has this token")
            match found.status(datetime.now(UTC)):
                case InvitationStatus.ACCEPTED:
                    raise invalid("this invitation was accepted already")
                case InvitationStatus.REVOKED:
                    raise invalid("this invitation was revoked")
                case InvitationStatus.EXPIRED:
                    raise invalid("this invitation has expired: ask for a new one")
            organization_id = found.organization_id
            # A partner's user ids are its own: its token cannot claim a seat in another partner's org.
            partner = principal.partner_id
            if partner is not None and await info.context.organization_partner(organization_id) != partner:
                raise ApiError(ErrorCode.FORBIDDEN, "this user token works only in its partner's organizations")
            await lock_members(connection, organization_id)
            if await member(connection, organization_id, principal.id) is not None:
                raise invalid("you are a member of this organization already; an Owner can change your role")
            await _within_limits(connection, organization_id, joining=True, taking_kit=found.kit is not None)
            joined = await put_member(
                connection, organization_id, principal.id, found.role, email=found.email, team_id=found.team_id,
                kit=found.kit,
            )  # fmt: skip
            await mark_accepted(connection, found.id, principal.id)
        return Member.from_domain(joined)

    @strawberry.mutation(
        extensions=[Authorize(Permission.MANAGE_MEMBERS)],
        description="Change a member's role, team or kit. The last Owner cannot be demoted (LAST_OWNER).",
    )
    async def update_member(self, info: Info, input: UpdateMemberInput) -> Member:
        organization_id = parse_id(input.organization_id, "organizationId")
        user_id = _user_id(input.user_id)
        kit = _kit(input.kit) if input.kit is not strawberry.UNSET else None
        team_id = await _team(info, organization_id, input.team_id) if input.team_id is not strawberry.UNSET else None
        async with info.context.resources.pool.acquire() as connection, connection.transaction():
            await lock_members(connection, organization_id)
            existing = await member(connection, organization_id, user_id)
            if existing is None:
                raise not_found("member")
            role = existing.role if input.role is None or input.role is strawberry.UNSET else input.role
            new_team = existing.team_id if input.team_id is strawberry.UNSET else team_id
            new_kit = existing.kit if input.kit is strawberry.UNSET else kit
            await _keep_an_owner(connection, existing, role)
            if new_kit is not None and existing.kit is None:
                await _within_limits(connection, organization_id, joining=False, taking_kit=True)
            changed = await update_member(connection, organization_id, user_id, role, team_id=new_team, kit=new_kit)
        assert changed is not None  # under the lock, the member found is still there
        return Member.from_domain(changed)

    @strawberry.mutation(
        extensions=[Authorize(Permission.MANAGE_MEMBERS)],
        description="Remove a member, effective on their next request. The last Owner cannot go (LAST_OWNER).",
    )
    async def remove_member(self, info: Info, input: RemoveMemberInput) -> Member:
        organization_id = parse_id(input.organization_id, "organizationId")
        user_id = _user_id(input.user_id)
        async with info.context.resources.pool.acquire() as connection, connection.transaction():
            await lock_members(connection, organization_id)
            existing = await member(connection, organization_id, user_id)
            if existing is None:
                raise not_found("member")
            await _keep_an_owner(connection, existing, None)
            removed = await remove_member(connection, organization_id, user_id)
        assert removed is not None
        return Member.from_domain(removed)

    @strawberry.mutation(
        extensions=[Authorize(Permission.GRANT)],
        description=(
            "Make a user a member directly, within the limits (admins and partners); for a member already, "
            "set their role, team and kit. Retrying is safe."
        ),
    )
    async def add_member(self, info: Info, input: AddMemberInput) -> Member:
        organization_id = parse_id(input.organization_id, "organizationId")
        user_id = _user_id(input.user_id)
        email = None if input.email is None else _email(input.email)
        kit = _kit(input.kit)
        await load_organization(info, organization_id)
        team_id = await _team(info, organization_id, input.team_id)
        async with info.context.resources.pool.acquire() as connection, connection.transaction():
            await lock_members(connection, organization_id)
            existing = await member(connection, organization_id, user_id)
            if existing is not None:
                await _keep_an_owner(connection, existing, input.role)
            taking_kit = kit is not None and (existing is None or existing.kit is None)
            await _within_limits(connection, organization_id, joining=existing is None, taking_kit=taking_kit)
            added = await put_member(
                connection, organization_id, user_id, input.role, email=email, team_id=team_id, kit=kit
            )
        return Member.from_domain(added)

    @strawberry.mutation(
        extensions=[Authorize(Permission.GRANT)],
        description=(
            "Set an organization's member and kit limits (admins and partners). A limit below the current "
            "count keeps who is there and refuses new ones (LIMIT_REACHED)."
        ),
    )
    async def set_organization_limits(self, info: Info, input: SetOrganizationLimitsInput) -> OrganizationLimits:
        organization_id = parse_id(input.organization_id, "organizationId")
        member_limit = _limit(input.member_limit, "memberLimit") if input.member_limit is not strawberry.UNSET else None
        kit_limit = _limit(input.kit_limit, "kitLimit") if input.kit_limit is not strawberry.UNSET else None
        await load_organization(info, organization_id)
        async with info.context.resources.pool.acquire() as connection, connection.transaction():
            await lock_members(connection, organization_id)
            current = (await limits_by_orgs(connection, [organization_id]))[organization_id]
            await set_limits(
                connection,
                organization_id,
                current.member_limit if input.member_limit is strawberry.UNSET else member_limit,
                current.kit_limit if input.kit_limit is strawberry.UNSET else kit_limit,
            )
            updated = (await limits_by_orgs(connection, [organization_id]))[organization_id]
        return OrganizationLimits.from_domain(updated)
