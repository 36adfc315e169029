"""Signed user tokens: a JWT (HS256) naming the integrator's user id in `sub`.

The token says who the user is, never what they may do: their role is read from their membership
in the organization each request touches, so a changed role or a removed member takes effect at
once. A token a partner minted carries its partner id (`ptn`) and works only in that partner's
organizations, so a partner cannot borrow a user id that also exists elsewhere.

The signing secret is CREDIT_LEDGER_TOKEN_SECRET, or else one generated on first start and kept
in PostgreSQL, so every API process of one deployment signs and checks with the same secret.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

import asyncpg
import jwt

from ledger.store.secrets import service_secret

ISSUER = "credit-ledger"
ALGORITHM = "HS256"
_SECRET_NAME = "user_token_secret"  # noqa: S105 - a name, not a secret


@dataclass(frozen=True, slots=True)
class UserClaims:
    user_id: str
    partner_id: UUID | None
    expires_at: datetime


class InvalidToken(Exception):
    pass


async def token_secret(connection: asyncpg.Connection | asyncpg.Pool, configured: str) -> bytes:
    if configured:
        return configured.encode()
    return await service_secret(connection, _SECRET_NAME)


def issue_token(secret: bytes, user_id: str, now: datetime, ttl: timedelta, partner_id: UUID | None = None) -> str:
    claims: dict[str, object] = {"sub": user_id, "iss": ISSUER, "iat": now, "exp": now + ttl}
    if partner_id is not None:
        claims["ptn"] = str(partner_id)
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def read_token(secret: bytes, token: str) -> UserClaims:
    try:
        claims = jwt.decode(
            token, secret, algorithms=[ALGORITHM], issuer=ISSUER, options={"require": ["sub", "exp", "iss"]}
        )
        partner = claims.get("ptn")
        return UserClaims(
            user_id=str(claims["sub"]),
            partner_id=None if partner is None else UUID(str(partner)),
            expires_at=datetime.fromtimestamp(int(claims["exp"])).astimezone(),
        )
    except (jwt.PyJWTError, ValueError, TypeError) as error:
        raise InvalidToken(str(error)) from None
