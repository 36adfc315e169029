"""One frozen settings object, built from the environment once and passed in.

Each setting is declared once, as one field: its environment variable, its cast and its default
(`setting(...)`, after starlette's `config("KEY", cast=..., default=...)`). That one declaration
drives both `Settings.from_environment` (reading) and `Settings.environment` (what a child process
is given), so the two cannot drift apart. Casts are strict: a value a cast does not accept stops
start-up with a `SettingsError` naming the variable and what it accepts, never a silent default
(`CREDIT_LEDGER_GRAPHIQL=ture` is an error, not `false`) nor a bare `ValueError`.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Generic, TypeVar

from ledger import constants
from ledger.runtime.rate_limit import RateLimit

T = TypeVar("T")


class SettingsError(Exception):
    """A setting's environment variable holds a value its cast does not accept."""

    def __init__(self, variable: str, value: str, accepted: str) -> None:
        super().__init__(f"{variable}={value!r} is not accepted: {accepted}")
        self.variable = variable
        self.value = value
        self.accepted = accepted


@dataclass(frozen=True, slots=True)
class Cast(Generic[T]):
    """How one kind of setting is read from its variable's text and written back to it. `parse`
    raises ValueError for text it does not accept; `accepted` says, for the error, what it does."""

    parse: Callable[[str], T]
    render: Callable[[T], str]
    accepted: str


def _text(value: str) -> str:
    return value


def _path(value: str) -> Path:
    if not value:
        raise ValueError(value)
    return Path(value)


text: Cast[str] = Cast(_text, _text, "any text")
path: Cast[Path] = Cast(_path, str, "a directory path (not empty)")

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def _boolean(value: str) -> bool:
    word = value.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise ValueError(value)


boolean: Cast[bool] = Cast(
    _boolean, lambda value: "true" if value else "false", "true, false, yes, no, on, off, 1 or 0 (any case)"
)


_WHOLE_NUMBER = re.compile(r"-?[0-9]+")


def integer(minimum: int, maximum: int | None = None) -> Cast[int]:
    """Decimal digits (an optional minus) for a whole number in [minimum, maximum]."""

    def parse(value: str) -> int:
        if not _WHOLE_NUMBER.fullmatch(value.strip()):
            raise ValueError(value)  # "two", "1.5", "", "1e3", "1_000", non-ASCII digits
        number = int(value)
        if number < minimum or (maximum is not None and number > maximum):
            raise ValueError(value)
        return number

    bounds = f"from {minimum:_} to {maximum:_}" if maximum is not None else f"at least {minimum:_}"
    return Cast(parse, str, f"a whole number {bounds}".replace("_", ","))


def _rate_limit(value: str) -> str:
    RateLimit.parse(value)
    return value


rate_limit: Cast[str] = Cast(
    _rate_limit,
    _text,
    '"<requests per second>/<burst>" (0.001 to 1,000,000 per second, bursts of 1 to 1,000,000; '
    'e.g. "200/400"), or "0" for no limit',
)


def setting(variable: str, cast: Cast[T], default: T) -> T:
    """Declare a field of `Settings`: its environment variable, cast and default, in one place."""
    field: T = dataclasses.field(default=default, metadata={"variable": variable, "cast": cast})
    return field


@dataclass(frozen=True, slots=True)
class Settings:
    # Empty means: start embedded servers in `state_dir`.
    database_url: str = setting("DATABASE_URL", text, "")
    redis_url: str = setting("REDIS_URL", text, "")
    # True: REDIS_URL names one node of a Redis Cluster, from which the ledger's client learns the
    # rest (`ledger.stream.connection`). The jobs' arq queue cannot run on a cluster: it takes
    # CREDIT_LEDGER_JOBS_REDIS_URL, a plain Redis (empty: REDIS_URL, when that is not a cluster).
    redis_cluster: bool = setting("CREDIT_LEDGER_REDIS_CLUSTER", boolean, False)
    jobs_redis_url: str = setting("CREDIT_LEDGER_JOBS_REDIS_URL", text, "")
    # setting() returns a dataclasses.field, which ruff cannot see; a Path is immutable anyway.
    state_dir: Path = setting("CREDIT_LEDGER_STATE_DIR", path, Path(".credit-ledger"))  # noqa: RUF009
    host: str = setting("CREDIT_LEDGER_HOST", text, "127.0.0.1")
    port: int = setting("CREDIT_LEDGER_PORT", integer(1, 65_535), 8000)
    partition_count: int = setting("CREDIT_LEDGER_PARTITIONS", integer(1), constants.partition_count_default)
    ledger_workers: int = setting("CREDIT_LEDGER_WORKERS", integer(1), 1)
    lease_ttl_ms: int = setting("CREDIT_LEDGER_LEASE_TTL_MS", integer(1), constants.lease_ttl_ms)
    graphiql: bool = setting("CREDIT_LEDGER_GRAPHIQL", boolean, True)
    # Operator-chosen admin API key, stored (hashed) on start-up; empty: one is made on first start.
    admin_key: str = setting("CREDIT_LEDGER_ADMIN_KEY", text, "")
    # Signs user tokens; empty: a secret generated once and kept in PostgreSQL.
    token_secret: str = setting("CREDIT_LEDGER_TOKEN_SECRET", text, "")
    # "<requests per second>/<burst>" per caller (API key or user) and per organization; "0" is off.
    rate_limit_caller: str = setting("CREDIT_LEDGER_RATE_LIMIT_CALLER", rate_limit, constants.rate_limit_caller_default)
    rate_limit_organization: str = setting(
        "CREDIT_LEDGER_RATE_LIMIT_ORGANIZATION", rate_limit, constants.rate_limit_organization_default
    )
    # Largest HTTP body (and WebSocket message) accepted.
    max_request_bytes: int = setting(
        "CREDIT_LEDGER_MAX_REQUEST_BYTES", integer(1), constants.request_size_max_default_bytes
    )
    introspection: bool = setting("CREDIT_LEDGER_INTROSPECTION", boolean, True)
    # A catalog file (TOML) `serve` loads before it starts anything, a refused one stopping start-up;
    # empty: none. A second load of the same file changes nothing, so every start may load it.
    catalog_file: str = setting("CREDIT_LEDGER_CATALOG_FILE", text, "")
    # Payments (Stripe). Without a secret key the service runs and payment mutations answer
    # PAYMENTS_NOT_CONFIGURED. The API base is Stripe's own unless set (tests point it at localstripe).
    stripe_api_key: str = setting("CREDIT_LEDGER_STRIPE_API_KEY", text, "")
    stripe_api_base: str = setting("CREDIT_LEDGER_STRIPE_API_BASE", text, "")
    # The endpoint's signing secret (whsec_...): `POST /stripe/webhook` refuses every event without it.
    stripe_webhook_secret: str = setting("CREDIT_LEDGER_STRIPE_WEBHOOK_SECRET", text, "")
    # Tests trade durability for speed on their throwaway servers; nothing else should. Not a
    # variable: no child process nor operator sets it.
    embedded_durable: bool = True

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Settings from the environment; an unset variable is its default. Raises SettingsError
        for the first variable whose value its cast refuses."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for field in _declared():
            variable, cast = field.metadata["variable"], field.metadata["cast"]
            if variable not in env:
                continue
            try:
                values[field.name] = cast.parse(env[variable])
            except ValueError:
                raise SettingsError(variable, env[variable], cast.accepted) from None
        return cls(**values)

    def with_urls(self, database_url: str, redis_url: str) -> Settings:
        return replace(self, database_url=database_url, redis_url=redis_url)

    @property
    def arq_redis_url(self) -> str:
        """The jobs queue's Redis: its own setting, else the ledger's, which must then be a plain
        Redis (arq cannot run on a cluster): SettingsError otherwise."""
        if self.redis_cluster and not self.jobs_redis_url:
            raise SettingsError(
                "CREDIT_LEDGER_JOBS_REDIS_URL", "", "the URL of a plain Redis for the jobs' queue (arq cannot run on"
                " the Redis Cluster that CREDIT_LEDGER_REDIS_CLUSTER=true names)",
            )  # fmt: skip
        return self.jobs_redis_url or self.redis_url

    def environment(self) -> dict[str, str]:
        """The variables that give a child process these same settings."""
        return {
            field.metadata["variable"]: field.metadata["cast"].render(getattr(self, field.name))
            for field in _declared()
        }


def _declared() -> list[dataclasses.Field[Any]]:
    """The fields declared with `setting(...)`: those read from and written to the environment."""
    return [field for field in dataclasses.fields(Settings) if "variable" in field.metadata]
