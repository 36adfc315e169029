"""Named crash points for fault tests: `CREDIT_LEDGER_FAILPOINTS="after_commit=0.05,before_apply=0.02"`
makes a process kill itself (SIGKILL, as a power cut would) with that probability each time it
passes the point. Unset, a failpoint costs one dictionary lookup.

Points in the ledger worker, in the order a batch meets them:
    before_apply     entries read, nothing applied
    in_transaction   applied and written, the PostgreSQL transaction not yet committed
    after_commit     committed, not yet acknowledged in Redis
"""

from __future__ import annotations

import os
import random
import signal

ENVIRONMENT_VARIABLE = "CREDIT_LEDGER_FAILPOINTS"


def _parse(spec: str) -> dict[str, float]:
    points: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, _, probability = item.partition("=")
        points[name] = float(probability or "1")
    return points


_armed = _parse(os.environ.get(ENVIRONMENT_VARIABLE, ""))


def failpoint(name: str) -> None:
    probability = _armed.get(name)
    if probability is not None and random.random() < probability:
        os.kill(os.getpid(), signal.SIGKILL)
