"""The one authorization check. Every root field (and every field of an organization) declares
what it needs with `Authorize(permission, organizations=...)`; this module alone decides.

An id the caller may not use answers FORBIDDEN whether or not it exists, so no id of another tenant
can be confirmed by probing. Decisions are kept for the request, so a batch of a thousand events
for one organization costs one decision.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, Protocol
from uuid import UUID

from graphql import OperationType
from strawberry.extensions import FieldExtension
from strawberry.types import Info as StrawberryInfo
from strawberry.utils.await_maybe import await_maybe

from graphql_api.access.policy import (
    ADMIN_PERMISSIONS,
    ORGANIZATION_PERMISSIONS,
    PARTNER_PERMISSIONS,
    ROLE_PERMISSIONS,
    USER_ONLY_PERMISSIONS,
    USER_PLATFORM_PERMISSIONS,
    Permission,
)
from graphql_api.access.principal import Principal, PrincipalKind
from graphql_api.errors import ApiError
from graphql_api.inputs import parse_id
from ledger.core.errors import ErrorCode
from ledger.directory.roles import Role

UNAUTHENTICATED_MESSAGE = "send Authorization: Bearer <API key or user token>"


class AccessContext(Protocol):
    """What the check needs from a request: its caller, and lookups cached for the request."""

    principal: Principal
    decisions: dict[tuple[Permission, UUID | None], bool]

    async def organization_partner(self, organization_id: UUID) -> UUID | bool | None:
        """The org's partner id, None for a platform org, False when there is no such org."""
        ...

    async def member_role(self, organization_id: UUID, user_id: str) -> Role | None: ...

    async def charge(self, organizations: Iterable[UUID]) -> None: ...

    async def renew(self) -> None:
        """Authenticate again and forget earlier decisions, lookups and charges."""
        ...


def forbidden(permission: Permission) -> ApiError:
    return ApiError(ErrorCode.FORBIDDEN, f"not allowed: {permission.value.replace('_', ' ')} in this organization")


async def authorize(context: AccessContext, permission: Permission, organizations: Iterable[UUID]) -> None:
    principal = context.principal
    if principal.kind is PrincipalKind.ANONYMOUS:
        raise ApiError(ErrorCode.UNAUTHENTICATED, UNAUTHENTICATED_MESSAGE)
    if permission not in ORGANIZATION_PERMISSIONS:
        if not await _decide(context, permission, None):
            raise ApiError(ErrorCode.FORBIDDEN, f"not allowed: {permission.value.replace('_', ' ')}")
        return
    for organization_id in set(organizations):
        if not await _decide(context, permission, organization_id):
            raise forbidden(permission)


async def _decide(context: AccessContext, permission: Permission, organization_id: UUID | None) -> bool:
    key = (permission, organization_id)
    decision = context.decisions.get(key)
    if decision is None:
        decision = context.decisions[key] = await _allowed(context, context.principal, permission, organization_id)
    return decision


async def _allowed(
    context: AccessContext, principal: Principal, permission: Permission, organization_id: UUID | None
) -> bool:
    match principal.kind:
        case PrincipalKind.ADMIN:
            return permission in ADMIN_PERMISSIONS
        case PrincipalKind.PARTNER:
            if permission not in PARTNER_PERMISSIONS:
                return False
            return (
                organization_id is None or await context.organization_partner(organization_id) == principal.partner_id
            )
        case PrincipalKind.ORGANIZATION_KEY:
            assert principal.role is not None
            if permission not in ROLE_PERMISSIONS[principal.role]:
                return False
            return organization_id is None or organization_id == principal.organization_id
        case PrincipalKind.USER:
            if organization_id is None:
                return permission in USER_PLATFORM_PERMISSIONS or permission in USER_ONLY_PERMISSIONS
            if principal.partner_id is not None and (
                await context.organization_partner(organization_id) != principal.partner_id
            ):
                return False
            role = await context.member_role(organization_id, principal.id)
            return role is not None and permission in ROLE_PERMISSIONS[role]
        case _:
            return False


# Where a field finds the organizations it touches.
Selector = Callable[[Any, dict[str, Any]], Sequence[UUID] | Awaitable[Sequence[UUID]]]


def from_input(_: Any, arguments: dict[str, Any]) -> list[UUID]:
    value = arguments["input"].organization_id
    return [] if value is None else [parse_id(value, "organizationId")]


def batch_organizations(_: Any, arguments: dict[str, Any]) -> list[UUID]:
    return list({parse_id(event.organization_id, "organizationId") for event in arguments["input"].events})


def from_argument(name: str, graphql_name: str) -> Selector:
    def select(_: Any, arguments: dict[str, Any]) -> list[UUID]:
        value = arguments.get(name)
        return [] if value is None else [parse_id(value, graphql_name)]

    return select


def from_source(source: Any, _: dict[str, Any]) -> list[UUID]:
    return [UUID(source.id)]


def nowhere(_: Any, __: dict[str, Any]) -> list[UUID]:
    return []


class Authorize(FieldExtension):
    """Checks `permission` in the organizations `organizations` selects before the resolver runs.

    A field that selects no organization (e.g. an optional organizationId left out) is checked for
    `without_organization` instead: a platform permission, or refused when there is none.
    """

    def __init__(
        self,
        permission: Permission,
        organizations: Selector = from_input,
        without_organization: Permission | None = None,
    ) -> None:
        self.permission = permission
        self.organizations = organizations
        self.without_organization = without_organization

    async def resolve_async(self, next_: Any, source: Any, info: StrawberryInfo[Any, Any], **kwargs: Any) -> Any:
        if info.operation.operation is OperationType.SUBSCRIPTION and info.path.prev is None:
            # A WebSocket connection's context outlives its operations: each subscription is
            # decided (and charged) on its own, as the caller stands now.
            await info.context.renew()
        selected = await await_maybe(self.organizations(source, kwargs))
        if selected or self.permission not in ORGANIZATION_PERMISSIONS:
            await authorize(info.context, self.permission, selected)
        elif self.without_organization is not None:
            await authorize(info.context, self.without_organization, ())
        else:
            raise ApiError(ErrorCode.INVALID_INPUT, "organizationId is required")
        # Only an allowed request is charged against the rate limits (the caller's, the orgs').
        await info.context.charge(selected)
        return await await_maybe(next_(source, info, **kwargs))
