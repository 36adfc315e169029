"""Invitations, members and organization limits: the directory writes them at once, in
transactions that lock the organization's members (`ledger.directory.members`), so the limits and
the last Owner hold under concurrent requests. These resolvers check and convert their inputs and
call it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import strawberry

from graphql_api import inputs
from graphql_api.access.authorize import Authorize, nowhere
from graphql_api.access.policy import Permission
from graphql_api.access.principal import Principal, PrincipalKind
from graphql_api.context import Info
from graphql_api.errors import invalid
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
    load_organization,
    optional_id,
    parse_id,
    printable,
)
from graphql_api.types.members import Invitation, Member, OrganizationLimits
from ledger import constants
from ledger.core import bounds
from ledger.directory import invitations, members
from ledger.directory.invitations import InvitationRequest
from ledger.directory.members import KEEP, Keep, MemberChange


def _inviter(principal: Principal) -> str:
    return f"user:{principal.id}" if principal.kind is PrincipalKind.USER else f"api_key:{principal.id}"


def _limit(value: int | None, what: str) -> int | Keep | None:
    """A limit to set (None: unlimited), or KEEP when the field was left out."""
    if value is strawberry.UNSET:
        return KEEP
    if value is not None and value < 0:
        raise invalid(f"{what} must be 0 or more, or null for unlimited")
    return value


def _change(input: UpdateMemberInput) -> MemberChange:
    """A field left out is KEEP; null clears a team or kit (and keeps the role)."""
    kit = KEEP if input.kit is strawberry.UNSET else inputs.kit(input.kit)
    team_id = KEEP if input.team_id is strawberry.UNSET else optional_id(input.team_id, "teamId")
    role = KEEP if input.role is None or input.role is strawberry.UNSET else input.role
    return MemberChange(role=role, team_id=team_id, kit=kit)


@strawberry.type
class MemberMutations:
    @strawberry.mutation(
        extensions=[Authorize(Permission.MANAGE_MEMBERS)],
        description="Invite someone into an organization. The answer's token is the invitee's to accept with.",
    )
    async def invite_member(self, info: Info, input: InviteMemberInput) -> Invitation:
        organization_id = parse_id(input.organization_id, "organizationId")
        email = inputs.email(input.email)
        kit = inputs.kit(input.kit)
        key = printable(input.idempotency_key, "idempotencyKey", bounds.INVITATION_KEY_LENGTH_MAX)
        if not 1 <= input.expires_in_hours <= constants.invitation_ttl_max_hours:
            raise invalid(f"expiresInHours must be 1 to {constants.invitation_ttl_max_hours}")
        await load_organization(info, organization_id)
        team_id = optional_id(input.team_id, "teamId")
        request = InvitationRequest(
            organization_id=organization_id, email=email, role=input.role, team_id=team_id, kit=kit,
            idempotency_key=key, created_by=_inviter(info.context.principal),
            expires_in=timedelta(hours=input.expires_in_hours),
        )  # fmt: skip
        resources = info.context.resources
        invited = await invitations.invite(resources.pool, request, resources.authenticator.token_secret)
        return Invitation.from_domain(invited.invitation, datetime.now(UTC), invited.token)

    @strawberry.mutation(
        extensions=[Authorize(Permission.MANAGE_MEMBERS)],
        description="Revoke a pending invitation. Revoking a revoked one answers it as it is.",
    )
    async def revoke_invitation(self, info: Info, input: RevokeInvitationInput) -> Invitation:
        organization_id = parse_id(input.organization_id, "organizationId")
        invitation_id = parse_id(input.invitation_id, "invitationId")
        revoked = await invitations.revoke_invitation(info.context.resources.pool, organization_id, invitation_id)
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
        joined = await invitations.accept_invitation(
            info.context.resources.pool, input.token.strip(), principal.id, principal.partner_id
        )
        return Member.from_domain(joined)

    @strawberry.mutation(
        extensions=[Authorize(Permission.MANAGE_MEMBERS)],
        description="Change a member's role, team or kit. The last Owner cannot be demoted (LAST_OWNER).",
    )
    async def update_member(self, info: Info, input: UpdateMemberInput) -> Member:
        organization_id = parse_id(input.organization_id, "organizationId")
        user_id = inputs.user_id(input.user_id)
        change = _change(input)
        changed = await members.change_member(info.context.resources.pool, organization_id, user_id, change)
        return Member.from_domain(changed)

    @strawberry.mutation(
        extensions=[Authorize(Permission.MANAGE_MEMBERS)],
        description="Remove a member, effective on their next request. The last Owner cannot go (LAST_OWNER).",
    )
    async def remove_member(self, info: Info, input: RemoveMemberInput) -> Member:
        organization_id = parse_id(input.organization_id, "organizationId")
        user_id = inputs.user_id(input.user_id)
        removed = await members.remove_member(info.context.resources.pool, organization_id, user_id)
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
        user_id = inputs.user_id(input.user_id)
        email = None if input.email is None else inputs.email(input.email)
        kit = inputs.kit(input.kit)
        await load_organization(info, organization_id)
        team_id = optional_id(input.team_id, "teamId")
        added = await members.add_member(
            info.context.resources.pool, organization_id, user_id, input.role, email=email, team_id=team_id, kit=kit
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
        member_limit = _limit(input.member_limit, "memberLimit")
        kit_limit = _limit(input.kit_limit, "kitLimit")
        await load_organization(info, organization_id)
        updated = await members.set_limits(info.context.resources.pool, organization_id, member_limit, kit_limit)
        return OrganizationLimits.from_domain(updated)
