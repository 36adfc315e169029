"""Who belongs to an organization: its members, its invitations and its member and kit limits."""

from __future__ import annotations

from datetime import datetime

import strawberry

from graphql_api.enums import InvitationStatus, Role
from graphql_api.scalars import id_of
from ledger.directory.invitations import Invitation as DomainInvitation
from ledger.directory.members import Limits as DomainLimits
from ledger.directory.members import Member as DomainMember


@strawberry.type(description="A user's membership of an organization: their role, team and kit.")
class Member:
    organization_id: strawberry.ID = strawberry.field(description="The organization.")
    user_id: str = strawberry.field(description="Your id of the user (the `sub` of their user token).")
    role: Role = strawberry.field(description="What they may do in the organization.")
    email: str | None = strawberry.field(description="Their email, when known (from the invitation).")
    team_id: strawberry.ID | None = strawberry.field(description="Their team; null for none.")
    kit: str | None = strawberry.field(description="The kit (seat) assigned to them; null for none.")
    created_at: datetime = strawberry.field(description="When they joined.")

    @classmethod
    def from_domain(cls, member: DomainMember) -> Member:
        return cls(
            organization_id=strawberry.ID(str(member.organization_id)),
            user_id=member.user_id,
            role=member.role,
            email=member.email,
            team_id=id_of(member.team_id),
            kit=member.kit,
            created_at=member.created_at,
        )


@strawberry.type(description="An invitation into an organization, accepted once by a user with its token.")
class Invitation:
    id: strawberry.ID = strawberry.field(description="The invitation's id.")
    organization_id: strawberry.ID = strawberry.field(description="The organization it joins.")
    email: str = strawberry.field(description="Whom it is for (lower-cased).")
    role: Role = strawberry.field(description="The role the member gets.")
    team_id: strawberry.ID | None = strawberry.field(description="The team the member joins; null for none.")
    kit: str | None = strawberry.field(description="The kit (seat) the member gets; null for none.")
    status: InvitationStatus = strawberry.field(description="Pending, accepted, revoked or expired.")
    created_by: str = strawberry.field(description="Who invited: user:<user id> or api_key:<key id>.")
    created_at: datetime = strawberry.field(description="When it was made.")
    expires_at: datetime = strawberry.field(description="When its token stops working.")
    accepted_at: datetime | None = strawberry.field(description="When it was accepted.")
    accepted_by: str | None = strawberry.field(description="The user who accepted it.")
    revoked_at: datetime | None = strawberry.field(description="When it was revoked.")
    token: str | None = strawberry.field(
        default=None,
        description=(
            "The secret the invitee accepts it with: only in inviteMember's answer (a retry with the same "
            "idempotency key shows it again), null everywhere else."
        ),
    )

    @classmethod
    def from_domain(cls, invitation: DomainInvitation, now: datetime, token: str | None = None) -> Invitation:
        return cls(
            id=strawberry.ID(str(invitation.id)),
            organization_id=strawberry.ID(str(invitation.organization_id)),
            email=invitation.email,
            role=invitation.role,
            team_id=id_of(invitation.team_id),
            kit=invitation.kit,
            status=invitation.status(now),
            created_by=invitation.created_by,
            created_at=invitation.created_at,
            expires_at=invitation.expires_at,
            accepted_at=invitation.accepted_at,
            accepted_by=invitation.accepted_by,
            revoked_at=invitation.revoked_at,
            token=token,
        )


@strawberry.type(description="An organization's member and kit limits, and how much of them is used.")
class OrganizationLimits:
    member_limit: int | None = strawberry.field(description="Most members it may have; null for unlimited.")
    kit_limit: int | None = strawberry.field(description="Most members holding a kit; null for unlimited.")
    members: int = strawberry.field(description="Members now.")
    kits: int = strawberry.field(description="Members holding a kit now.")

    @classmethod
    def from_domain(cls, limits: DomainLimits) -> OrganizationLimits:
        return cls(
            member_limit=limits.member_limit, kit_limit=limits.kit_limit, members=limits.members, kits=limits.kits
        )
