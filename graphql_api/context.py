"""What every resolver gets: the process's shared resources and this request's loaders."""

from __future__ import annotations

from dataclasses import dataclass, field
from uuid import UUID

import asyncpg
import redis.asyncio as redis
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.types import Info as StrawberryInfo

from graphql_api.known import KnownSet, known_organizations_max, known_products_max
from graphql_api.loaders import Loaders
from ledger.runtime.settings import Settings
from ledger.stream.mailbox import Mailbox
from ledger.stream.pubsub import PubSubHub


@dataclass(frozen=True, slots=True)
class Resources:
    """Opened once per process by the app's lifespan."""

    settings: Settings
    pool: asyncpg.Pool
    redis: redis.Redis
    hub: PubSubHub
    mailbox: Mailbox
    known_organizations: KnownSet[UUID] = field(default_factory=lambda: KnownSet(known_organizations_max))
    known_products: KnownSet[str] = field(default_factory=lambda: KnownSet(known_products_max))


@dataclass(slots=True)
class Context:
    request: Request | WebSocket
    response: Response | WebSocket | None
    resources: Resources
    loaders: Loaders


Info = StrawberryInfo[Context, None]
