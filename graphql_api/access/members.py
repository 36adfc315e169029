"""Moved to `ledger.directory.members`; these names stay only until the resolvers call the
directory (issue 13, phase 2), then this module goes."""

from __future__ import annotations

from ledger.directory.members import (
    Limits,
    Member,
    limits_by_orgs,
    lock_members,
    member,
    members_by_orgs,
    memberships_of,
    owner_count,
    put_member,
    roles_of,
)
from ledger.directory.members import delete_member as remove_member
from ledger.directory.members import write_limits as set_limits
from ledger.directory.members import write_member as update_member

__all__ = [
    "Limits",
    "Member",
    "limits_by_orgs",
    "lock_members",
    "member",
    "members_by_orgs",
    "memberships_of",
    "owner_count",
    "put_member",
    "remove_member",
    "roles_of",
    "set_limits",
    "update_member",
]
