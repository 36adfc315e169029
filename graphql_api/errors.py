"""The API's one error model: every error a client sees carries a stable `extensions.code`, one of
`ledger.core.errors.ErrorCode`.

Expected failures are `ApiError`s (or the ledger's own `LedgerError`s) and keep their message.
Errors of the request itself (syntax, validation, a value that does not parse) are the client's and
keep graphql-core's message. A lost connection to PostgreSQL or Redis is an outage, not a bug: the
client sees UNAVAILABLE and retries. Anything else is a bug: its message, stack and SQL stay in our
log and the client sees "Unexpected error." with code INTERNAL.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import asyncpg
from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

from ledger.core.errors import ErrorCode, LedgerError, PaymentDeclined
from ledger.runtime.outages import OUTAGES

log = logging.getLogger(__name__)

UNAVAILABLE_MESSAGE = "a backing service is unavailable; retry with the same idempotency key"
# Text PostgreSQL cannot store in a name, email or the like (U+0000, which it refuses; a lone
# surrogate, which asyncpg cannot encode): the request's own fault, and nothing was written with it.
# (Ledger commands refuse both earlier, in `validate`.)
_UNSTORABLE_TEXT = (asyncpg.CharacterNotInRepertoireError, asyncpg.UntranslatableCharacterError)


def _unstorable(error: Exception | None) -> bool:
    if isinstance(error, (*_UNSTORABLE_TEXT, UnicodeEncodeError)):
        return True
    # asyncpg reports text it cannot encode as a DataError caused by the UnicodeEncodeError.
    return isinstance(error, asyncpg.DataError) and isinstance(error.__cause__, UnicodeEncodeError)


class ApiError(Exception):
    def __init__(self, code: ErrorCode, message: str, extensions: dict[str, object] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.extensions = extensions or {}


class RefusedEvent(ApiError):
    """One command of a request refused before anything was queued: which one (`index`, in request
    order), and why (`error`'s code and message, which GraphQL answers unchanged)."""

    def __init__(self, index: int, error: ApiError | LedgerError) -> None:
        super().__init__(error.code, error.message, error.extensions if isinstance(error, ApiError) else None)
        self.index = index


# The REST routes' prefix: their errors have the shape `{"error": {"code", "message", "index"}}`.
REST_PREFIX = "/v1/"


def error_body(code: ErrorCode, message: str, path: str = "") -> dict[str, object]:
    """The API's error shape, for the answers given before GraphQL runs (the HTTP edge): GraphQL's,
    or under `REST_PREFIX` the REST routes' own."""
    if path.startswith(REST_PREFIX):
        return {"error": {"code": code, "message": message, "index": None}}
    return {"data": None, "errors": [{"message": message, "extensions": {"code": code}}]}


def not_found(what: str) -> ApiError:
    return ApiError(ErrorCode.NOT_FOUND, f"{what} not found")


def invalid(message: str) -> ApiError:
    return ApiError(ErrorCode.INVALID_INPUT, message)


def _classify(error: GraphQLError) -> GraphQLError:
    original = error.original_error
    if isinstance(original, ApiError):
        return _with_code(error, original.code, original.message, extra=original.extensions)
    if isinstance(original, PaymentDeclined):
        return _with_code(error, original.code, original.message, extra={"declineCode": original.decline_code})
    if isinstance(original, LedgerError):
        return _with_code(error, original.code, original.message)
    if _unstorable(original):
        message = "text must be valid Unicode without the NUL character (U+0000)"
        return _with_code(error, ErrorCode.INVALID_INPUT, message, keep_original=False)
    if isinstance(original, OUTAGES):
        log.warning("backing service unavailable in %s: %r", error.path, original)
        return _with_code(error, ErrorCode.UNAVAILABLE, UNAVAILABLE_MESSAGE, keep_original=False)
    if error.path is None:
        # Raised before execution: the request's own fault.
        if error.message.startswith("Syntax Error"):
            return _with_code(error, ErrorCode.GRAPHQL_PARSE_FAILED, error.message)
        code = ErrorCode.INVALID_INPUT if original is not None else ErrorCode.GRAPHQL_VALIDATION_FAILED
        return _with_code(error, code, error.message)
    if original is None:
        return _with_code(error, ErrorCode.INVALID_INPUT, error.message)
    log.error("unexpected error in %s", error.path, exc_info=original)
    return _with_code(error, ErrorCode.INTERNAL, "Unexpected error.", keep_original=False)


def _with_code(
    error: GraphQLError,
    code: ErrorCode,
    message: str,
    *,
    keep_original: bool = True,
    extra: dict[str, object] | None = None,
) -> GraphQLError:
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=error.original_error if keep_original else None,
        extensions={**(error.extensions or {}), **(extra or {}), "code": code},
    )


def classified(errors: list[GraphQLError]) -> list[GraphQLError]:
    """Each error with its code, the unexpected ones masked (and logged)."""
    return [_classify(error) for error in errors]


class ErrorCodes(SchemaExtension):
    """Gives every error its code and masks the unexpected ones."""

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        if result is not None and result.errors:
            result.errors = classified(result.errors)

    def on_stream_result(self, result: Any) -> Iterator[None]:
        # Subscriptions (and operations over a WebSocket) send each result as it comes.
        if getattr(result, "errors", None):
            result.errors = [_classify(error) for error in result.errors]
        yield
