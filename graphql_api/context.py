"""What every resolver gets: the process's shared resources and this request's loaders."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from uuid import UUID

import asyncpg
import redis.asyncio as redis
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.types import Info as StrawberryInfo

from graphql_api.access.authenticate import Authenticator, Unauthenticated
from graphql_api.access.policy import Permission
from graphql_api.access.principal import ANONYMOUS, Principal, PrincipalKind
from graphql_api.edge.rate_limits import RateLimited, RateLimiter
from graphql_api.errors import ApiError
from graphql_api.known import KnownMap
from graphql_api.loaders import Loaders
from ledger import constants
from ledger.core.errors import ErrorCode
from ledger.directory.organizations import Organization
from ledger.directory.roles import Role
from ledger.payments.gateway import Gateway
from ledger.runtime.settings import Settings
from ledger.stream.mailbox import Mailbox
from ledger.stream.pubsub import PubSubHub

# How long a process trusts the products it has seen priced (a product taken out of the catalog, or
# given a cheaper version, is seen within this).


@dataclass(frozen=True, slots=True)
class Resources:
    """Opened once per process by the app's lifespan."""

    settings: Settings
    pool: asyncpg.Pool
    redis: redis.Redis
    hub: PubSubHub
    mailbox: Mailbox
    authenticator: Authenticator
    rate_limiter: RateLimiter
    # Stripe; None when no key is configured (payment mutations answer PAYMENTS_NOT_CONFIGURED).
    gateway: Gateway | None = None
    # Organization rows never change once written (`graphql_api.loaders.organizations`): once
    # read, an organization (its existence, name and partner) needs no further lookup.
    organizations: KnownMap[UUID, Organization] = field(
        default_factory=lambda: KnownMap(constants.known_organizations_max)
    )
    # Each product's cheapest catalog rate in credits per unit, read again after constants.product_rates_ttl_s.
    known_products: KnownMap[str, Decimal] = field(
        default_factory=lambda: KnownMap(constants.known_products_max, constants.product_rates_ttl_s)
    )

    def loaders(self) -> Loaders:
        """A request's loaders over these resources."""
        return Loaders.create(self.pool, self.redis, self.organizations)


@dataclass(slots=True)
class Context:
    request: Request | WebSocket
    response: Response | WebSocket | None
    resources: Resources
    loaders: Loaders
    principal: Principal = ANONYMOUS
    # What the principal was authenticated from (the Authorization header, or on a WebSocket the
    # connection_init payload's), for subscriptions to authenticate again as they run.
    credentials: str | None = None
    decisions: dict[tuple[Permission, UUID | None], bool] = field(default_factory=dict)
    # graphql-transport-ws's connection_init payload, set by strawberry on a WebSocket.
    connection_params: dict[str, object] | None = None
    # What this request has been charged to already: "caller" and organization ids.
    charged: set[str] = field(default_factory=set)
    # A query's root fields resolve concurrently: one at a time, each sees what the others charged.
    charging: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def charge(self, organizations: Iterable[UUID]) -> None:
        """Charge this request to its caller and these organizations, each once per request."""
        if self.principal.kind is PrincipalKind.ADMIN:
            return  # the operator's own backend: trusted, and it feeds every org at once
        async with self.charging:
            await self._charge([str(org) for org in organizations])

    async def _charge(self, organizations: list[str]) -> None:
        new = [org for org in organizations if org not in self.charged]
        caller = None if "caller" in self.charged else _caller(self.principal)
        if caller is None and not new:
            return
        try:
            await self.resources.rate_limiter.charge(caller, new)
        except RateLimited as limited:
            raise ApiError(ErrorCode.RATE_LIMITED, str(limited), {"retryAfterMs": limited.retry_after_ms}) from None
        self.charged.update(new)
        self.charged.add("caller")

    async def renew(self) -> None:
        """Authenticate the credentials again and forget what this connection decided, looked up
        and was charged: an operation on a long-lived WebSocket starts (and a subscription goes on)
        only as the caller may now."""
        self.decisions.clear()
        self.charged.clear()
        self.loaders = self.resources.loaders()
        try:
            self.principal = await self.resources.authenticator.authenticate(self.credentials)
        except Unauthenticated as error:
            self.principal = ANONYMOUS
            raise ApiError(ErrorCode.UNAUTHENTICATED, str(error)) from None

    async def organization_partner(self, organization_id: UUID) -> UUID | bool | None:
        organization = await self.loaders.organization.load(organization_id)
        return False if organization is None else organization.partner_id

    async def member_role(self, organization_id: UUID, user_id: str) -> Role | None:
        return await self.loaders.member_role.load((organization_id, user_id))


def _caller(principal: Principal) -> str | None:
    match principal.kind:
        case PrincipalKind.ADMIN | PrincipalKind.ANONYMOUS:
            return None
        case PrincipalKind.USER:
            return f"user:{principal.id}"
        case _:
            return f"key:{principal.id}"


Info = StrawberryInfo[Context, None]
