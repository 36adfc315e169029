"""One frozen settings object, built from the environment once and passed in."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from ledger import constants


@dataclass(frozen=True, slots=True)
class Settings:
    # Empty means: start embedded servers in `state_dir`.
    database_url: str = ""
    redis_url: str = ""
    state_dir: Path = Path(".credit-ledger")
    host: str = "127.0.0.1"
    port: int = 8000
    partition_count: int = constants.partition_count_default
    ledger_workers: int = 1
    lease_ttl_ms: int = constants.lease_ttl_ms
    graphiql: bool = True
    # Operator-chosen admin API key, stored (hashed) on start-up; empty: one is made on first start.
    admin_key: str = ""
    # Signs user tokens; empty: a secret generated once and kept in PostgreSQL.
    token_secret: str = ""
    # "<requests per second>/<burst>" per caller (API key or user) and per organization; "0" is off.
    rate_limit_caller: str = "200/400"
    rate_limit_organization: str = "500/1000"
    # Largest HTTP body (and WebSocket message) accepted: a 1,000-event recordUsageBatch is ~310 KB.
    max_request_bytes: int = 1_048_576
    introspection: bool = True
    # Tests trade durability for speed on their throwaway servers; nothing else should.
    embedded_durable: bool = True

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        return cls(
            database_url=env.get("DATABASE_URL", ""),
            redis_url=env.get("REDIS_URL", ""),
            state_dir=Path(env.get("CREDIT_LEDGER_STATE_DIR", ".credit-ledger")),
            host=env.get("CREDIT_LEDGER_HOST", "127.0.0.1"),
            port=int(env.get("CREDIT_LEDGER_PORT", "8000")),
            partition_count=int(env.get("CREDIT_LEDGER_PARTITIONS", str(constants.partition_count_default))),
            ledger_workers=int(env.get("CREDIT_LEDGER_WORKERS", "1")),
            lease_ttl_ms=int(env.get("CREDIT_LEDGER_LEASE_TTL_MS", str(constants.lease_ttl_ms))),
            graphiql=env.get("CREDIT_LEDGER_GRAPHIQL", "true").lower() in {"1", "true", "yes"},
            admin_key=env.get("CREDIT_LEDGER_ADMIN_KEY", ""),
            token_secret=env.get("CREDIT_LEDGER_TOKEN_SECRET", ""),
            rate_limit_caller=env.get("CREDIT_LEDGER_RATE_LIMIT_CALLER", "200/400"),
            rate_limit_organization=env.get("CREDIT_LEDGER_RATE_LIMIT_ORGANIZATION", "500/1000"),
            max_request_bytes=int(env.get("CREDIT_LEDGER_MAX_REQUEST_BYTES", "1048576")),
            introspection=env.get("CREDIT_LEDGER_INTROSPECTION", "true").lower() in {"1", "true", "yes"},
        )

    def with_urls(self, database_url: str, redis_url: str) -> Settings:
        return replace(self, database_url=database_url, redis_url=redis_url)

    def environment(self) -> dict[str, str]:
        """The variables that give a child process these same settings."""
        return {
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_url,
            "CREDIT_LEDGER_STATE_DIR": str(self.state_dir),
            "CREDIT_LEDGER_HOST": self.host,
            "CREDIT_LEDGER_PORT": str(self.port),
            "CREDIT_LEDGER_PARTITIONS": str(self.partition_count),
            "CREDIT_LEDGER_WORKERS": str(self.ledger_workers),
            "CREDIT_LEDGER_LEASE_TTL_MS": str(self.lease_ttl_ms),
            "CREDIT_LEDGER_GRAPHIQL": "true" if self.graphiql else "false",
            "CREDIT_LEDGER_ADMIN_KEY": self.admin_key,
            "CREDIT_LEDGER_TOKEN_SECRET": self.token_secret,
            "CREDIT_LEDGER_RATE_LIMIT_CALLER": self.rate_limit_caller,
            "CREDIT_LEDGER_RATE_LIMIT_ORGANIZATION": self.rate_limit_organization,
            "CREDIT_LEDGER_MAX_REQUEST_BYTES": str(self.max_request_bytes),
            "CREDIT_LEDGER_INTROSPECTION": "true" if self.introspection else "false",
        }
