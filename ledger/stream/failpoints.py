"""Named crash points for fault tests: `CREDIT_LEDGER_FAILPOINTS="after_commit=0.05,before_apply=0.02"`
makes a process kill itself (SIGKILL, as a power cut would) with that probability each time it
passes the point. Unset, a failpoint costs one dictionary lookup.

Points in the ledger worker, in the order a batch meets them:
    before_apply     entries read, nothing applied
    in_transaction   applied and written, the PostgreSQL transaction not yet committed (a batch
                     written by one statement: applied, the statement not yet sent)
    after_commit     committed, not yet acknowledged in Redis

Poisoned commands, for tests of poison isolation: `CREDIT_LEDGER_POISON="write=poison-"` makes a
batch raise `InjectedFault` at that point whenever it holds a command whose idempotency key starts
with the prefix, the way a store refusing one value fails the whole statement. Unset, a poison
point costs one dictionary lookup per batch. Points:
    apply            the batch applied by the core, nothing written
    write            the batch written in its transaction, not yet committed (or, written by
                     one statement, about to be sent)
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
from collections.abc import Iterable, Iterator

ENVIRONMENT_VARIABLE = "CREDIT_LEDGER_FAILPOINTS"
POISON_VARIABLE = "CREDIT_LEDGER_POISON"


class InjectedFault(Exception):
    """What a poisoned batch raises: a failure that is not an outage, so it must be isolated."""


def _parse(spec: str) -> dict[str, float]:
    points: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, _, probability = item.partition("=")
        points[name] = float(probability or "1")
    return points


def _parse_poison(spec: str) -> dict[str, str]:
    points: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, _, prefix = item.partition("=")
        if prefix:  # an empty prefix would poison everything
            points[name] = prefix
    return points


_armed = _parse(os.environ.get(ENVIRONMENT_VARIABLE, ""))
_poison = _parse_poison(os.environ.get(POISON_VARIABLE, ""))


def failpoint(name: str) -> None:
    probability = _armed.get(name)
    if probability is not None and random.random() < probability:
        os.kill(os.getpid(), signal.SIGKILL)


def poisoned(name: str, idempotency_keys: Iterable[str]) -> None:
    """Raise InjectedFault if the point is armed and any key carries its prefix. Pass a generator:
    unarmed, it is never iterated."""
    prefix = _poison.get(name)
    if prefix is None:
        return
    for key in idempotency_keys:
        if key.startswith(prefix):
            raise InjectedFault(f"injected fault at {name}: idempotency key {key!r} is poisoned")


@contextlib.contextmanager
def poisoning(name: str, prefix: str) -> Iterator[None]:
    """Arm a poison point in this process for the duration (for in-process tests)."""
    if not prefix:
        raise ValueError("an empty prefix would poison every command")
    previous = _poison.get(name)
    _poison[name] = prefix
    try:
        yield
    finally:
        if previous is None:
            _poison.pop(name, None)
        else:
            _poison[name] = previous
