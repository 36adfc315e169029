"""Moved to `ledger.directory.partners`; these names stay only until the resolvers call the
directory (issue 13, phase 2), then this module goes."""

from __future__ import annotations

from ledger.directory.partners import Partner, create_partner, partner

__all__ = ["Partner", "create_partner", "partner"]
