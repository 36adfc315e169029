"""The API's per-process memory of what exists: bounded, and with a TTL read again once it lapses."""

from __future__ import annotations

import pytest

from graphql_api import known
from graphql_api.known import KnownMap


def test_a_known_map_is_bounded_and_drops_the_least_recently_confirmed() -> None:
    rows = KnownMap[str, int](2)
    rows.add({"a": 1, "b": 2})
    rows.add({"a": 1})  # confirmed again: "b" is now the oldest
    rows.add({"c": 3})
    assert rows.unknown(["a", "b", "c", "d"]) == {"b", "d"}
    assert (rows.get("a"), rows.get("b"), rows.get("c")) == (1, None, 3)


def test_an_entry_past_its_ttl_is_unknown_until_confirmed_again(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr(known.time, "monotonic", lambda: now[0])
    rates = KnownMap[str, int](10, ttl_s=10.0)
    rates.add({"sms.message": 1})
    now[0] += 9.9
    assert rates.unknown(["sms.message"]) == set()
    now[0] += 0.2
    assert rates.unknown(["sms.message"]) == {"sms.message"}
    assert rates.get("sms.message") == 1  # the last value stays usable until it is read again
    rates.add({"sms.message": 2})
    assert rates.unknown(["sms.message"]) == set() and rates.get("sms.message") == 2
