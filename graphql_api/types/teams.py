"""A team (workspace) of an organization."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import strawberry

from graphql_api.context import Info
from graphql_api.types.credits import Balance
from ledger.directory.teams import Team as DomainTeam


@strawberry.type(description="A team (workspace) of an organization; it can own credit lots and have a budget.")
class Team:
    id: strawberry.ID
    name: str
    created_at: datetime
    organization_id: strawberry.Private[UUID]

    @strawberry.field(
        description=(
            "What the team holds now: usable credits in its own lots (not the shared pool it may also spend) "
            "and what holds placed for it reserve."
        )
    )
    async def balance(self, info: Info) -> Balance:
        return Balance.from_domain(await info.context.loaders.team_balance.load((self.organization_id, UUID(self.id))))

    @classmethod
    def from_domain(cls, team: DomainTeam) -> Team:
        return cls(
            id=strawberry.ID(str(team.id)),
            name=team.name,
            created_at=team.created_at,
            organization_id=team.organization_id,
        )
