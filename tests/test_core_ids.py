"""Derived ids stay what they were: the journal holds them, and a retry must derive the same."""

from __future__ import annotations

import uuid
from uuid import UUID

from ledger.core.ids import Namespace, derived_id

COMMAND_ID = UUID("00000000-0000-4000-8000-000000000001")


def test_derived_ids_join_their_parts_with_colons_in_a_fixed_namespace() -> None:
    lots = UUID("5f0c1a52-8d7e-4b8f-9a51-3e2f0d6c9b10")
    assert derived_id(Namespace.LOTS, COMMAND_ID, "grant") == uuid.uuid5(lots, f"{COMMAND_ID}:grant")
    assert derived_id(Namespace.LOTS, COMMAND_ID, "x") != derived_id(Namespace.HOLDS_AND_QUOTES, COMMAND_ID, "x")


def test_the_namespaces_never_change() -> None:
    assert {space.name: str(space.value) for space in Namespace} == {
        "LOTS": "5f0c1a52-8d7e-4b8f-9a51-3e2f0d6c9b10",
        "HOLDS_AND_QUOTES": "8a6d3c0e-2b1f-4e57-9c44-71d0f3a5b2e6",
        "ALERT_EVENTS": "0b8f4d36-5c1e-4a9b-8f27-6d3e9a1c4b70",
        "ALERT_RULES": "3c9e7a10-4f2b-4d86-b1a5-9e0d7c6f2a41",
        "BUILT_IN_ALERTS": "65fee9d5-adf2-49c7-ad26-c3ef45559778",
    }
