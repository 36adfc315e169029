"""The schema, assembled once; `schema.graphql` at the top of the repository is its printout."""

from __future__ import annotations

import strawberry
from graphql import GraphQLError, GraphQLSchema
from strawberry.extensions import (
    AddValidationRules,
    DisableIntrospection,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    QueryDepthLimiter,
    ValidationCache,
)
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from graphql_api.edge.documents import DocumentCache
from graphql_api.errors import ErrorCodes
from graphql_api.mutations import Mutation
from graphql_api.queries import Query
from graphql_api.scalars import SCALAR_MAP
from graphql_api.subscriptions import Subscription
from ledger import constants

# The limiters' rules, built once: a limiter made per request makes new rule classes, and the
# validation cache, keyed by the rules, would never hit.
_LIMIT_RULES = [
    *QueryDepthLimiter(max_depth=constants.query_depth_max).validation_rules,
    *MaxAliasesLimiter(max_alias_count=constants.query_aliases_max).validation_rules,
]


class LedgerSchema(strawberry.Schema):
    def process_errors(self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None) -> None:
        # ErrorCodes logs what is unexpected (with its stack) and outages; a client's own mistake
        # (a bad id, a forbidden field) is an answer, not something to log with a stack trace.
        return None


def build_schema(*, introspection: bool = True) -> strawberry.Schema:
    """The schema; without introspection (CREDIT_LEDGER_INTROSPECTION=false) `__schema` and `__type`
    are refused at validation, as production APIs may want."""
    return LedgerSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        config=StrawberryConfig(scalar_map=SCALAR_MAP),
        extensions=[
            ErrorCodes,
            lambda: AddValidationRules(_LIMIT_RULES),
            lambda: MaxTokensLimiter(max_token_count=constants.query_tokens_max),
            # Clients send the same few documents with new variables: parse and validate each once.
            DocumentCache,
            lambda: ValidationCache(maxsize=constants.documents_cached_max),
            *([] if introspection else [DisableIntrospection]),
        ],
    )


def schema_text() -> str:
    return str(build_schema()) + "\n"


def graphql_schema() -> GraphQLSchema:
    return build_schema()._schema
