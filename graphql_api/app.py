"""The Starlette application: GraphQL over HTTP and WebSocket, plus health endpoints."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

import redis.asyncio as redis
from cross_web import HTTPException  # what strawberry.asgi raises for a request it cannot read
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types.unset import UNSET, UnsetType

from graphql_api.access.authenticate import Authenticator, Unauthenticated
from graphql_api.access.middleware import Authentication
from graphql_api.access.principal import ANONYMOUS
from graphql_api.access.tokens import token_secret
from graphql_api.context import Context, Resources
from graphql_api.loaders import Loaders
from graphql_api.rate_limits import Limit, RateLimiter
from graphql_api.request_size import RequestSizeLimit
from graphql_api.schema import build_schema
from graphql_api.websocket import LedgerTransportWSHandler, subscriptions_per_connection_max
from ledger.runtime.settings import Settings
from ledger.store.pool import create_pool
from ledger.stream.mailbox import Mailbox
from ledger.stream.pubsub import PubSubHub

log = logging.getLogger(__name__)
readiness_timeout_s = 2.0
_HTTP_CODES = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}


class LedgerGraphQL(GraphQL[Context, None]):
    graphql_transport_ws_handler_class = LedgerTransportWSHandler

    def __init__(self, holder: dict[str, Resources], *, graphiql: bool, introspection: bool) -> None:
        super().__init__(
            build_schema(introspection=introspection),
            graphql_ide="graphiql" if graphiql else None,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
            max_subscriptions_per_connection=subscriptions_per_connection_max,
        )
        self._holder = holder

    async def get_context(self, request: Request | WebSocket, response: Response | WebSocket | None) -> Context:
        resources = self._holder["resources"]
        return Context(
            request=request,
            response=response,
            resources=resources,
            loaders=Loaders.create(resources.pool),
            principal=request.scope.get("principal", ANONYMOUS),
            credentials=request.headers.get("authorization"),
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        # Strawberry answers a request it cannot read (bad JSON, no query, a batch) in plain text;
        # here it gets the API's error shape and a code like every other error.
        try:
            response = await self.run(Request(scope=scope, receive=receive))
        except HTTPException as error:
            code = _HTTP_CODES.get(error.status_code, "BAD_REQUEST")
            body = {"data": None, "errors": [{"message": error.reason, "extensions": {"code": code}}]}
            response = JSONResponse(body, status_code=error.status_code)
        await response(scope, receive, send)

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        # Browsers cannot set headers on a WebSocket: the credentials come in connection_init.
        authorization = (context.connection_params or {}).get("authorization")
        if isinstance(authorization, str) and authorization:
            try:
                context.principal = await context.resources.authenticator.authenticate(authorization)
            except Unauthenticated:
                raise ConnectionRejectionError({"code": "UNAUTHENTICATED"}) from None
            context.credentials = authorization
        return UNSET  # type: ignore[no-any-return]


@contextlib.asynccontextmanager
async def open_resources(settings: Settings) -> AsyncIterator[Resources]:
    pool = await create_pool(settings.database_url)
    client = redis.Redis.from_url(settings.redis_url, socket_timeout=10, socket_connect_timeout=5)
    hub = PubSubHub(client)
    await hub.start()
    mailbox = Mailbox(client, settings.partition_count, hub)
    await mailbox.start()
    try:
        authenticator = Authenticator(pool, await token_secret(pool, settings.token_secret))
        rate_limiter = RateLimiter(
            client,
            per_caller=Limit.parse(settings.rate_limit_caller, "CREDIT_LEDGER_RATE_LIMIT_CALLER"),
            per_organization=Limit.parse(settings.rate_limit_organization, "CREDIT_LEDGER_RATE_LIMIT_ORGANIZATION"),
        )
        yield Resources(
            settings=settings,
            pool=pool,
            redis=client,
            hub=hub,
            mailbox=mailbox,
            authenticator=authenticator,
            rate_limiter=rate_limiter,
        )
    finally:
        await hub.stop()
        await client.aclose()
        await pool.close()


def create_app(settings: Settings) -> Starlette:
    holder: dict[str, Resources] = {}

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        async with open_resources(settings) as resources:
            holder["resources"] = resources
            yield

    async def healthz(_: Request) -> Response:
        return PlainTextResponse("ok")

    async def readyz(_: Request) -> Response:
        resources = holder["resources"]
        checks: dict[str, str] = {}
        try:
            await resources.pool.fetchval("SELECT 1", timeout=readiness_timeout_s)
            checks["postgres"] = "ok"
        except Exception as error:
            checks["postgres"] = type(error).__name__
        try:
            await resources.redis.ping()
            checks["redis"] = "ok"
        except Exception as error:
            checks["redis"] = type(error).__name__
        ready = all(value == "ok" for value in checks.values())
        return JSONResponse({"ready": ready, **checks}, status_code=200 if ready else 503)

    graphql = LedgerGraphQL(holder, graphiql=settings.graphiql, introspection=settings.introspection)
    return Starlette(
        middleware=[
            Middleware(RequestSizeLimit, max_bytes=settings.max_request_bytes),
            Middleware(Authentication, holder=holder),
        ],
        routes=[
            Route("/graphql", graphql, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
        ],
        lifespan=lifespan,
    )
