"""The caller of a request, as authentication established it."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from uuid import UUID

from ledger.directory.roles import Role


class PrincipalKind(enum.StrEnum):
    ANONYMOUS = "anonymous"
    ADMIN = "admin"
    PARTNER = "partner"
    ORGANIZATION_KEY = "organization_key"
    USER = "user"


@dataclass(frozen=True, slots=True)
class Principal:
    kind: PrincipalKind
    # The API key's id, or the user's id for a user token.
    id: str = ""
    # An organization key's org and role.
    organization_id: UUID | None = None
    role: Role | None = None
    # A partner key's partner; for a user token a partner minted, the partner whose orgs it is bound to.
    partner_id: UUID | None = None

    @property
    def api_key_id(self) -> UUID | None:
        return UUID(self.id) if self.kind in _KEY_KINDS else None


_KEY_KINDS = {PrincipalKind.ADMIN, PrincipalKind.PARTNER, PrincipalKind.ORGANIZATION_KEY}

ANONYMOUS = Principal(PrincipalKind.ANONYMOUS)
