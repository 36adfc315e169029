"""What a ledger worker publishes after a commit for live subscribers, and how readers decode it.

Per organization and batch, one message on `meter:<org>`: a `MeterUpdate` (the balance and pool
always, the teams and users the batch touched). Usage debits and alert events are not published:
their streams read them from the journal when a meter update says the organization changed, so
they miss nothing (and publishing each debit cost the worker more than its meters).
Pub/sub may drop a message while a connection is down; a meter starts from a full read and every
update carries absolute values, so the next one puts it right.

The same bytes are the organization's balance snapshot (`keys.balance_snapshot`), written in the
pipeline that acknowledges the batch, which the API answers balance queries from
(`decode_snapshot`). Beside the meter's fields they carry `until`: the first instant after `at`
when time alone changes the balance (a lot starts or ends, a hold expires), after which the
snapshot no longer says what PostgreSQL would. A batch that only replays journaled commands (its
entries read again after a crash between commit and acknowledgement) writes the snapshot too, so
the next owner refreshes what the crash left stale.

Each carries first its `version`, `[epoch, sequence]`: the fencing epoch its batch committed under
(for the organization's partition) and the writing worker's batch sequence. Ordered
lexicographically it orders two snapshots of one organization as their commits: a takeover bumps
the epoch, and every commit under an epoch precedes the next epoch's claim (the fence check holds
its share lock until the commit); within an epoch one worker commits its batches in order. The
acknowledgement writes a snapshot only if it is newer than the one stored (a one-key script), so a
late acknowledgement (a worker paused past its lease, a write retried) never puts back an older
balance. Readers may ignore the version. The meter PUBLISH carries it too but is not ordered: a late
message may reach a subscriber after a newer one, and the next update (absolute values) corrects it.
(A Redis Cluster failover that loses the newest writes can still bring an older snapshot back,
within the readers' age bound: no version can order what the store forgot.)"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import msgspec

from ledger.core import codec
from ledger.core.batch import Outcome
from ledger.core.entries import Applied
from ledger.core.meter import MeterUpdate, meter_update
from ledger.core.money import MicroCredits
from ledger.core.state import Balance, OrgState

# A snapshot's version: (fencing epoch, batch sequence), compared lexicographically.
Version = tuple[int, int]


def messages(
    outcomes: Sequence[Outcome],
    initial: Mapping[UUID, OrgState],
    final: Mapping[UUID, OrgState],
    at: datetime,
    versions: Mapping[UUID, Version],
) -> dict[UUID, bytes]:
    """A committed batch's meter update for each organization it applied a command to, or only
    replayed commands for (its snapshot made afresh from the state the journal holds), each with
    its version."""
    applied: dict[UUID, list[Applied]] = {}
    for outcome in outcomes:
        changes = applied.setdefault(outcome.command.organization_id, [])
        if outcome.applied is not None:
            changes.append(outcome.applied)
    return {
        org_id: encode(
            meter_update(initial[org_id], final[org_id], changes, at), valid_until(final[org_id], at), versions[org_id]
        )
        for org_id, changes in applied.items()
    }


def valid_until(state: OrgState, at: datetime) -> datetime | None:
    """The first instant after `at` at which time alone changes the state's balance: a lot with
    credits left starts or ends, or an open hold expires. None: nothing scheduled."""
    soonest: datetime | None = None
    for lot in state.lots:
        if lot.remaining <= 0:
            continue
        edge = lot.effective_at if lot.effective_at > at else lot.expires_at
        if edge is not None and edge > at and (soonest is None or edge < soonest):
            soonest = edge
    for hold in state.holds.values():
        if hold.open_at(at) and (soonest is None or hold.expires_at < soonest):
            soonest = hold.expires_at
    return soonest


def encode(update: MeterUpdate, until: datetime | None = None, version: Version | None = None) -> bytes:
    """As codec.to_json(update) would write it (with `until`, and `version` first, where the
    acknowledgement's compare-and-set reads it), at a fraction of the cost: every batch encodes one
    per organization it touched, and most touch no team or user (ids, times and integers need no
    escaping)."""
    until_json = "null" if until is None else f'"{until.isoformat()}"'
    version_json = "" if version is None else f'"version":[{version[0]},{version[1]}],'
    head = (
        f'{{{version_json}"organization_id":"{update.organization_id}","at":"{update.at.isoformat()}","until":{until_json},'
        f'"balance":{{"total":{update.balance.total},"held":{update.balance.held}}},"pool_free":{update.pool_free}'
    )
    if not update.teams and not update.users:
        return (head + "}").encode()
    teams = {str(team): codec.to_json(meter) for team, meter in update.teams.items()}
    users = {user: codec.to_json(limits) for user, limits in update.users.items()}
    return f"{head},{_dumps({'teams': teams, 'users': users}).decode()[1:]}".encode()


class _SnapshotBalance(msgspec.Struct):
    total: int
    held: int


class _Snapshot(msgspec.Struct):
    """What a balance read needs of a snapshot; the meter's other fields are skipped unread."""

    at: datetime
    until: datetime | None
    balance: _SnapshotBalance


_SNAPSHOT = msgspec.json.Decoder(_Snapshot)


def decode_snapshot(raw: bytes, now: datetime, age_max: timedelta) -> Balance | None:
    """The balance a snapshot holds if it is current at `now`: written at most `age_max` ago and
    before its `until`. None when it is not, or cannot be read (written by an older release
    without `until`, or damaged): the caller asks PostgreSQL."""
    try:
        snapshot = _SNAPSHOT.decode(raw)
    except msgspec.MsgspecError:
        return None
    if not snapshot.at <= now < snapshot.at + age_max or (snapshot.until is not None and now >= snapshot.until):
        return None
    return Balance(MicroCredits(snapshot.balance.total), MicroCredits(snapshot.balance.held))


def decode_meter(message: bytes) -> MeterUpdate:
    return codec.from_json(MeterUpdate, json.loads(message))


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()
