"""Inputs of the organization and team mutations."""

from __future__ import annotations

import strawberry


@strawberry.input(description="A new organization.")
class CreateOrganizationInput:
    name: str = strawberry.field(description="Display name, 1 to 200 characters.")
    id: strawberry.ID | None = strawberry.field(
        default=None,
        description="Choose the id (a UUID) to make creation idempotent: a retry returns the same organization.",
    )


@strawberry.input(description="A new team (workspace) in an organization.")
class CreateTeamInput:
    organization_id: strawberry.ID
    name: str = strawberry.field(description="Display name, 1 to 200 characters.")
    id: strawberry.ID | None = strawberry.field(default=None, description="Choose the id to make creation idempotent.")
