"""The Starlette application: GraphQL over HTTP and WebSocket, plus health endpoints."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from cross_web import (
    AsyncHTTPRequestAdapter,
    HTTPException,  # what strawberry.asgi raises for a request it cannot read
)
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import MissingQueryError
from strawberry.http import GraphQLRequestData
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType

from graphql_api.access.authenticate import Authenticator
from graphql_api.access.middleware import Authentication
from graphql_api.access.principal import ANONYMOUS, PrincipalKind
from graphql_api.access.tokens import token_secret
from graphql_api.context import Context, Resources
from graphql_api.edge.cached_execution import execute_cached
from graphql_api.edge.http import (
    GRAPHQL_METHODS,
    decode_request_json,
    http_error_response,
    method_not_allowed,
    unauthenticated,
)
from graphql_api.edge.invoice_pdf import invoice_pdf
from graphql_api.edge.query_cost import document_refusal
from graphql_api.edge.rate_limits import RateLimiter
from graphql_api.edge.request_size import RequestSizeLimit
from graphql_api.edge.stripe_webhook import stripe_webhook
from graphql_api.edge.websocket import LedgerTransportWSHandler
from graphql_api.ingest.route import usage_route
from graphql_api.schema import build_schema
from ledger import constants
from ledger.payments.gateway import gateway_from
from ledger.runtime.rate_limit import RateLimit
from ledger.runtime.settings import Settings
from ledger.store.pool import create_pool
from ledger.stream.connection import redis_client
from ledger.stream.health import readiness
from ledger.stream.mailbox import Mailbox
from ledger.stream.pubsub import PubSubHub

log = logging.getLogger(__name__)
# What each method may run over HTTP: subscriptions need a WebSocket (graphql-transport-ws); the
# HTTP stream transports are not served, so Strawberry's own default would run one as a query.
_HTTP_OPERATIONS = {
    "GET": frozenset({OperationType.QUERY}),
    "POST": frozenset({OperationType.QUERY, OperationType.MUTATION}),
}
_SUBSCRIPTIONS_OVER_WEBSOCKET = "subscriptions are served over WebSocket (graphql-transport-ws) at /graphql"


class LedgerGraphQL(GraphQL[Context, None]):
    graphql_transport_ws_handler_class = LedgerTransportWSHandler

    def __init__(self, holder: dict[str, Resources], *, graphiql: bool, introspection: bool) -> None:
        self._ledger_schema = build_schema(introspection=introspection)
        super().__init__(
            self._ledger_schema,
            graphql_ide="graphiql" if graphiql else None,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
            max_subscriptions_per_connection=constants.subscriptions_per_connection_max,
        )
        self._holder = holder

    async def get_context(self, request: Request | WebSocket, response: Response | WebSocket | None) -> Context:
        resources = self._holder["resources"]
        return Context(
            request=request,
            response=response,
            resources=resources,
            loaders=resources.loaders(),
            principal=request.scope.get("principal", ANONYMOUS),
            credentials=request.headers.get("authorization"),
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request = Request(scope=scope, receive=receive)
        try:
            response = await self._answer(request)
        except HTTPException as error:
            # Strawberry answers a request it cannot read (bad JSON, no query, a batch) in plain
            # text; here it gets the API's error shape and a code like every other error.
            response = http_error_response(error)
        await response(scope, receive, send)

    async def _answer(self, request: Request) -> Response:
        if request.method not in GRAPHQL_METHODS:
            return method_not_allowed(request.method)
        principal = request.scope.get("principal", ANONYMOUS)
        if principal.kind is PrincipalKind.ANONYMOUS and not self.should_render_graphql_ide(
            self.request_adapter_class(request)
        ):
            # Nothing is read, parsed or validated for a caller without credentials: every field
            # would refuse it anyway, and it must not cost the process anything.
            return unauthenticated()
        return await self.run(request)

    def decode_json(self, data: str | bytes) -> object:
        return decode_request_json(data)

    async def execute_single(
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        sub_response: Response,
        context: Context,
        root_value: None,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        """Strawberry's, with subscriptions refused over HTTP (they are served over WebSocket),
        the document's cost checked before it is parsed, and a document seen before run at once
        (`edge.cached_execution`)."""
        refusal = document_refusal(request_data.query, request_data.operation_name)
        if refusal is not None:
            return ExecutionResult(data=None, errors=[refusal])
        allowed = _HTTP_OPERATIONS[request_adapter.method]
        cached = await execute_cached(
            self._ledger_schema,
            request_data.query,
            request_data.operation_name,
            request_data.variables,
            context,
            allowed,
            request_data.extensions,
        )
        if cached is not None:
            return cached
        try:
            return await self.schema.execute(
                request_data.query,
                root_value=root_value,
                variable_values=request_data.variables,
                context_value=context,
                operation_name=request_data.operation_name,
                allowed_operation_types=allowed,
                operation_extensions=request_data.extensions,
            )
        except InvalidOperationTypeError as error:
            if error.operation_type is OperationType.SUBSCRIPTION:
                raise HTTPException(400, _SUBSCRIPTIONS_OVER_WEBSOCKET) from None
            raise HTTPException(400, error.as_http_error_reason(request_adapter.method)) from None
        except CannotGetOperationTypeError as error:
            raise HTTPException(400, error.as_http_error_reason()) from None
        except MissingQueryError:
            raise HTTPException(400, "No GraphQL query found in the request") from None


@contextlib.asynccontextmanager
async def open_resources(settings: Settings) -> AsyncIterator[Resources]:
    pool = await create_pool(settings.database_url, size_min=constants.pool_size_max)
    client = redis_client(settings)  # a Redis Cluster's client with CREDIT_LEDGER_REDIS_CLUSTER
    hub = PubSubHub(client)
    await hub.start()
    mailbox = Mailbox(client, settings.partition_count, hub)
    await mailbox.start()
    gateway = gateway_from(settings)
    try:
        authenticator = Authenticator(pool, await token_secret(pool, settings.token_secret))
        rate_limiter = RateLimiter(
            client,
            per_caller=RateLimit.parse(settings.rate_limit_caller),
            per_organization=RateLimit.parse(settings.rate_limit_organization),
        )
        yield Resources(
            settings=settings,
            pool=pool,
            redis=client,
            hub=hub,
            mailbox=mailbox,
            authenticator=authenticator,
            rate_limiter=rate_limiter,
            gateway=gateway,
        )
    finally:
        if gateway is not None:
            await gateway.close()
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
        # The ledger's own verdict (stores, stalled and unowned partitions), computed afresh on every
        # probe rather than read from the health job's hash.
        resources = holder["resources"]
        ready, body = await readiness(resources.pool, resources.redis, resources.settings)
        return JSONResponse(body, status_code=200 if ready else 503)

    graphql = LedgerGraphQL(holder, graphiql=settings.graphiql, introspection=settings.introspection)
    return Starlette(
        middleware=[
            Middleware(RequestSizeLimit, max_bytes=settings.max_request_bytes),
            Middleware(Authentication, holder=holder),
        ],
        routes=[
            # Every method reaches the view, so the ones it does not serve get its 405 with a code.
            Route("/graphql", graphql),
            WebSocketRoute("/graphql", graphql),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            # Every method reaches the route, so the ones it does not serve get its 405 with a code.
            Route("/v1/usage", usage_route(holder), methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
            Route("/stripe/webhook", stripe_webhook(holder), methods=["POST"]),
            Route("/invoices/{invoice_id}.pdf", invoice_pdf(holder), methods=["GET"]),
        ],
        lifespan=lifespan,
    )
