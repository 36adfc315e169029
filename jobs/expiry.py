"""Expiry: every minute, send an Expire command to each organization with lots or holds past expiry.

The job decides nothing about balances: the organization's actor writes the breakage. A command
sent twice (a slow worker, an overlapping run) expires nothing the second time.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Any

from ledger import constants
from ledger.core.commands import Command, Envelope, Expire
from ledger.core.validation import validate
from ledger.store.expiry import organizations_with_expired
from ledger.stream.mailbox import Mailbox

log = logging.getLogger(__name__)


async def expire_credit_lots(ctx: dict[str, Any]) -> int:
    as_of = datetime.now(UTC)
    organizations = await organizations_with_expired(ctx["pool"], as_of, constants.expiry_organizations_per_run_max)
    commands = [
        Command(Envelope(uuid.uuid4(), org, f"expire:{as_of.isoformat()}", as_of), Expire(as_of))
        for org in organizations
    ]
    for command in commands:
        validate(command)
    mailbox: Mailbox = ctx["mailbox"]
    if commands:
        await mailbox.send(commands)
        log.info("sent expiry to %d organization(s)", len(commands))
    return len(commands)
