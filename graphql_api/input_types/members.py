"""Inputs of the member mutations: invitations, members and limits."""

from __future__ import annotations

import strawberry

from graphql_api.enums import Role


@strawberry.input(description="Invite someone into an organization; they accept with the token in the answer.")
class InviteMemberInput:
    organization_id: strawberry.ID = strawberry.field(description="The organization to join.")
    email: str = strawberry.field(description="Whom it is for; kept lower-cased.")
    role: Role = strawberry.field(description="The role they get.")
    idempotency_key: str = strawberry.field(
        description="Your unique key for this invitation: a retry returns the same invitation and token."
    )
    team_id: strawberry.ID | None = strawberry.field(default=None, description="A team of the organization to join.")
    kit: str | None = strawberry.field(default=None, description="A kit (seat) to assign, 1 to 100 characters.")
    expires_in_hours: int = strawberry.field(default=168, description="How long the token works: 1 to 720 hours.")


@strawberry.input(description="Revoke a pending invitation: its token stops working at once.")
class RevokeInvitationInput:
    organization_id: strawberry.ID = strawberry.field(description="The invitation's organization.")
    invitation_id: strawberry.ID = strawberry.field(description="The invitation.")


@strawberry.input(description="Join an organization with an invitation's token, as the signed-in user.")
class AcceptInvitationInput:
    token: str = strawberry.field(description="The token inviteMember answered (inv_...).")


@strawberry.input(description="Change a member. A field left out stays as it is; null clears a team or kit.")
class UpdateMemberInput:
    organization_id: strawberry.ID = strawberry.field(description="The member's organization.")
    user_id: str = strawberry.field(description="The member's user id.")
    role: Role | None = strawberry.field(default=strawberry.UNSET, description="A new role.")
    team_id: strawberry.ID | None = strawberry.field(
        default=strawberry.UNSET, description="A team of the organization, or null for none."
    )
    kit: str | None = strawberry.field(default=strawberry.UNSET, description="A kit (seat), or null for none.")


@strawberry.input(description="Remove a member: their next request no longer reaches the organization.")
class RemoveMemberInput:
    organization_id: strawberry.ID = strawberry.field(description="The member's organization.")
    user_id: str = strawberry.field(description="The member's user id.")


@strawberry.input(description="Make a user a member directly (the platform provisioning its users), or change one.")
class AddMemberInput:
    organization_id: strawberry.ID = strawberry.field(description="The organization.")
    user_id: str = strawberry.field(description="Your id of the user (the `sub` of their user token).")
    role: Role = strawberry.field(description="Their role.")
    email: str | None = strawberry.field(default=None, description="Their email; kept lower-cased.")
    team_id: strawberry.ID | None = strawberry.field(default=None, description="A team of the organization.")
    kit: str | None = strawberry.field(default=None, description="A kit (seat), 1 to 100 characters.")


@strawberry.input(description="Set an organization's limits. A field left out stays as it is; null is unlimited.")
class SetOrganizationLimitsInput:
    organization_id: strawberry.ID = strawberry.field(description="The organization.")
    member_limit: int | None = strawberry.field(default=strawberry.UNSET, description="Most members, 0 or more.")
    kit_limit: int | None = strawberry.field(
        default=strawberry.UNSET, description="Most members holding a kit, 0 or more."
    )
