"""Mutations that edit the catalog (the platform's): load a catalog document, add a version."""

from __future__ import annotations

import strawberry


@strawberry.type
class CatalogMutations:
    pass
