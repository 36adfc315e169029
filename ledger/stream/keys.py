"""Redis key names. Everything about one partition shares a hash tag, so it lives on one Redis
Cluster slot and scripts may touch several of its keys at once."""

from __future__ import annotations

import zlib
from uuid import UUID

CONSUMER_GROUP = "ledger"
# Live ledger workers, scored by their last heartbeat (Redis time, ms).
WORKER_REGISTRY = "ledger:workers"
# Entries set aside rather than let stall their partition (`ledger.stream.dead_letters`). One stream
# on a slot of its own: it is only ever written by single-key commands (never in a script or a
# MULTI with a partition's keys), which a cluster client routes to its slot.
DEAD_LETTER_STREAM = "ledger:dead-letter"
# Figures for dashboards and alerts (a hash: backlog, pending entries, dead letters counted).
HEALTH_KEY = "ledger:health"
# JSON messages for operators: one per dead letter.
ADMIN_ALERTS_CHANNEL = "ledger:admin-alerts"


def partition_of(org_id: UUID, partition_count: int) -> int:
    """A stable org → partition map (the same in every process and every release)."""
    return zlib.crc32(org_id.bytes) % partition_count


def stream(partition: int) -> str:
    return f"ledger:{{{partition}}}"


def lease(partition: int) -> str:
    return f"ledger:{{{partition}}}:lease"


def reply_channel(instance_id: str) -> str:
    return f"ledger:replies:{instance_id}"


def meter_channel(org_id: UUID) -> str:
    return f"meter:{org_id}"


def balance_snapshot(org_id: UUID) -> str:
    return f"balance:{{{org_id}}}"


# Rate limits (`graphql_api.edge.rate_limits`): every bucket shares one hash tag, so the one script
# that charges a caller and its organizations together touches keys of one Redis Cluster slot.
def rate_limit_caller(caller: str) -> str:
    return f"{{ratelimit}}:caller:{caller}"


def rate_limit_organization(organization: str) -> str:
    return f"{{ratelimit}}:org:{organization}"
