"""What a lost backing service looks like: the failures that mean PostgreSQL or Redis is down,
restarting or unreachable, not that a request or our code is wrong. The ledger worker retries
them; the API answers them with UNAVAILABLE."""

from __future__ import annotations

import asyncpg
from redis.exceptions import ClusterError, SlotNotCoveredError, TryAgainError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

# Not QueryCanceledError (a statement timeout): that is an OperatorInterventionError too, but says
# nothing about the server's health.
OUTAGES: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError,  # also ConnectionDoesNotExistError: lost in mid-query
    asyncpg.InterfaceError,  # the connection was already closed
    asyncpg.CannotConnectNowError,  # starting up or shutting down
    asyncpg.AdminShutdownError,  # our session ended by a server shutdown
    asyncpg.CrashShutdownError,
    # A session ended by the server can leave asyncpg's protocol mid-state: "cannot switch to
    # state N; another operation (2) is in progress" (MagicStack/asyncpg#784, #1069). The pool
    # drops that connection.
    asyncpg.InternalClientError,
    OSError,  # ConnectionRefusedError and other socket failures, and TimeoutError
    RedisConnectionError,  # also BusyLoadingError: Redis still reading its AOF
    RedisTimeoutError,
    # Redis Cluster: a master lost, slots uncovered or mid-migration. CLUSTERDOWN (ClusterDownError,
    # MasterDownError), redirections that never settle (redis-py's "TTL exhausted"), TRYAGAIN (a
    # multi-key command while its slot migrates), and slots no master serves.
    ClusterError,
    TryAgainError,
    SlotNotCoveredError,
)
