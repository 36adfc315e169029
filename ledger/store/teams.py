"""Moved to `ledger.directory.teams`; these names stay only until the resolvers call the
directory (issue 13, phase 2), then this module goes."""

from __future__ import annotations

from ledger.directory.teams import Team, create_team, team, teams_by_orgs

__all__ = ["Team", "create_team", "team", "teams_by_orgs"]
