"""The HTTP edge of /graphql: what is answered before any GraphQL work is paid for, and how.

Every answer here has the API's error shape (`{"data": null, "errors": [{"message", "extensions":
{"code"}}]}`): a method other than GET or POST is 405 METHOD_NOT_ALLOWED, a body that is not a
GraphQL request (not UTF-8, not JSON, not an object, nested too deep) is 400 BAD_REQUEST, and a
caller without credentials is UNAUTHENTICATED before its body is read.
"""

from __future__ import annotations

import json

from cross_web import HTTPException
from starlette.responses import JSONResponse

from graphql_api.access.authorize import UNAUTHENTICATED_MESSAGE
from graphql_api.errors import error_body
from ledger import constants
from ledger.core.errors import ErrorCode

GRAPHQL_METHODS = frozenset({"GET", "POST"})
_HTTP_CODES = {404: ErrorCode.NOT_FOUND, 405: ErrorCode.METHOD_NOT_ALLOWED}


def error_response(status: int, code: ErrorCode, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(code, message), status_code=status, headers=headers)


def http_error_response(error: HTTPException) -> JSONResponse:
    """What Strawberry raises for a request it cannot read, in the API's shape."""
    code = _HTTP_CODES.get(error.status_code, ErrorCode.BAD_REQUEST)
    headers = {"allow": ", ".join(sorted(GRAPHQL_METHODS))} if error.status_code == 405 else None
    return error_response(error.status_code, code, error.reason, headers)


def method_not_allowed(method: str) -> JSONResponse:
    return http_error_response(HTTPException(405, f"{method} is not served here: send GET or POST"))


def unauthenticated() -> JSONResponse:
    # HTTP 200, as every field has always answered a caller without credentials (the README's
    # UNAUTHENTICATED row); a key or token that is refused is 401, in the middleware.
    return error_response(200, ErrorCode.UNAUTHENTICATED, UNAUTHENTICATED_MESSAGE)


def decode_request_json(data: str | bytes) -> object:
    """The body (or a GET parameter) as JSON: an object, or a list (a batch, which Strawberry then
    refuses with its own message); anything else is a 400."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
    except UnicodeDecodeError:
        raise HTTPException(400, "the body is not valid UTF-8") from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        raise HTTPException(400, "Unable to parse request body as JSON") from None
    except RecursionError:
        # The C decoder stops at the interpreter's recursion limit: cheap, but not the answer.
        raise HTTPException(400, _too_deep()) from None
    if not isinstance(value, (dict, list)):
        raise HTTPException(400, "the body must be a JSON object with a `query`")
    if _deeper_than(value, constants.json_depth_max):
        raise HTTPException(400, _too_deep())
    return value


def _too_deep() -> str:
    return f"the JSON is nested deeper than {constants.json_depth_max} levels"


def _deeper_than(value: object, limit: int) -> bool:
    """Whether objects and lists nest more than `limit` deep; iterative, so depth costs no stack."""
    pending: list[tuple[object, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        pending.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False
