"""Dataloaders, one per file: dedupe keys, one `= ANY($1)` query, results in key order."""

from __future__ import annotations

from functools import cached_property
from uuid import UUID

import asyncpg
import redis.asyncio as redis
from strawberry.dataloader import DataLoader

from graphql_api.known import KnownMap
from graphql_api.loaders.balances import balance_loader
from graphql_api.loaders.catalog import CatalogLoader
from graphql_api.loaders.invitations import invitations_loader
from graphql_api.loaders.limits import limits_loader
from graphql_api.loaders.members import member_role_loader
from graphql_api.loaders.organization_members import organization_members_loader
from graphql_api.loaders.organizations import organization_loader
from graphql_api.loaders.postings import postings_loader
from graphql_api.loaders.spend import spend_loader
from graphql_api.loaders.spending_rules import spending_rules_loader
from graphql_api.loaders.team_balances import team_balance_loader
from graphql_api.loaders.teams import teams_loader
from ledger.core.money import MicroCredits
from ledger.core.state import Balance, OrgState, SpendKey
from ledger.directory.invitations import Invitation
from ledger.directory.members import Limits, Member
from ledger.directory.organizations import Organization
from ledger.directory.roles import Role
from ledger.directory.teams import Team
from ledger.store.history import PostingView


class Loaders:
    """One request's loaders, each made when first used: most requests need one or two of them,
    and every request pays for what is made."""

    def __init__(self, pool: asyncpg.Pool, client: redis.Redis, organizations: KnownMap[UUID, Organization]) -> None:
        """`organizations` is the process's cache of organization rows."""
        self._pool = pool
        self._client = client
        self._organizations = organizations

    @classmethod
    def create(cls, pool: asyncpg.Pool, client: redis.Redis, organizations: KnownMap[UUID, Organization]) -> Loaders:
        return cls(pool, client, organizations)

    @cached_property
    def organization(self) -> DataLoader[UUID, Organization | None]:
        return organization_loader(self._pool, self._organizations)

    @cached_property
    def balance(self) -> DataLoader[UUID, Balance]:
        return balance_loader(self._pool, self._client)

    @cached_property
    def member_role(self) -> DataLoader[tuple[UUID, str], Role | None]:
        return member_role_loader(self._pool)

    @cached_property
    def members(self) -> DataLoader[UUID, list[Member]]:
        return organization_members_loader(self._pool)

    @cached_property
    def invitations(self) -> DataLoader[tuple[UUID, bool], list[Invitation]]:
        return invitations_loader(self._pool)

    @cached_property
    def limits(self) -> DataLoader[UUID, Limits]:
        return limits_loader(self._pool)

    @cached_property
    def postings(self) -> DataLoader[tuple[UUID, UUID], list[PostingView]]:
        return postings_loader(self._pool)

    @cached_property
    def teams(self) -> DataLoader[UUID, list[Team]]:
        return teams_loader(self._pool)

    @cached_property
    def team_balance(self) -> DataLoader[tuple[UUID, UUID], Balance]:
        return team_balance_loader(self._pool)

    @cached_property
    def spending_rules(self) -> DataLoader[UUID, OrgState]:
        return spending_rules_loader(self._pool)

    @cached_property
    def spend(self) -> DataLoader[tuple[UUID, SpendKey], MicroCredits]:
        return spend_loader(self._pool)

    @cached_property
    def catalog(self) -> CatalogLoader:
        return CatalogLoader(self._pool)
