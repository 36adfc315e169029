"""Running a document that parsed and validated before, without Strawberry's per-request
machinery: no schema extensions made and entered, no parse, no validation; graphql-core executes
the cached document at once, with Strawberry's own execution context (its resolvers and `Info`).

Only what the extensions would do to such a document remains, and is done here: every error gets
its code (`graphql_api.errors.classified`, as `ErrorCodes` does). A document that is not cached, or
whose operation cannot be chosen or may not run over this method, takes the ordinary path, which
parses, validates and refuses it with the ordinary errors.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import strawberry
from graphql.execution.middleware import MiddlewareManager
from strawberry.execution import optimized_is_awaitable
from strawberry.schema._graphql_core import execute, execution_context_class_kwargs
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType
from strawberry.utils.await_maybe import await_maybe
from strawberry.utils.operation import get_operation_type

from graphql_api.edge.documents import cached_document
from graphql_api.errors import classified


async def execute_cached(
    schema: strawberry.Schema,
    query: str | None,
    operation_name: str | None,
    variables: dict[str, Any] | None,
    context: object,
    allowed: Collection[OperationType],
    operation_extensions: dict[str, Any] | None = None,
) -> ExecutionResult | None:
    """The result of a cached document's operation; None when the ordinary path must run it."""
    document = None if not query else cached_document(schema, query)
    if document is None:
        return None
    try:
        operation_type = get_operation_type(document, operation_name)
    except RuntimeError:  # no such operation, or several and none named
        return None
    if operation_type not in allowed:
        return None
    result = await await_maybe(
        execute(
            schema._schema,
            document,
            root_value=None,
            middleware=MiddlewareManager(),
            variable_values=variables,
            operation_name=operation_name,
            context_value=context,
            is_awaitable=optimized_is_awaitable,  # type: ignore[arg-type]  # as Strawberry passes it
            operation_extensions=operation_extensions,
            **execution_context_class_kwargs(schema.execution_context_class),
        )
    )
    return ExecutionResult(data=result.data, errors=classified(result.errors) if result.errors else None)
