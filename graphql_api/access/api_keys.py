"""Moved to `ledger.directory.api_keys`; these names stay only until the resolvers call the
directory (issue 13, phase 2), then this module goes."""

from __future__ import annotations

from ledger.directory.api_keys import (
    KEY_MARK,
    PREFIX_LENGTH,
    ApiKey,
    any_admin_key,
    api_key,
    api_keys_of,
    create_api_key,
    ensure_admin_key,
    find_api_key,
    key_hash,
    new_key,
    prefix_of,
    revoke_api_key,
    touch_api_key,
)

__all__ = [
    "KEY_MARK",
    "PREFIX_LENGTH",
    "ApiKey",
    "any_admin_key",
    "api_key",
    "api_keys_of",
    "create_api_key",
    "ensure_admin_key",
    "find_api_key",
    "key_hash",
    "new_key",
    "prefix_of",
    "revoke_api_key",
    "touch_api_key",
]
