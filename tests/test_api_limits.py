"""The query limits hold with the document and validation caches on: a document over the limits is
refused every time it is sent, a good one answers every time."""

from __future__ import annotations

from tests.conftest import Service


async def test_limits_are_enforced_on_every_request_of_a_cached_document(service: Service) -> None:
    too_many_aliases = "query { " + " ".join(f"a{i}: products {{ key }}" for i in range(31)) + " }"
    fine = "query { " + " ".join(f"a{i}: products {{ key }}" for i in range(30)) + " }"
    too_many_tokens = "query { products { " + " ".join(["key"] * 5_001) + " } }"
    for _ in range(3):
        refused = await service.graphql(too_many_aliases)
        assert refused["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED", refused
        assert "aliases" in refused["errors"][0]["message"]
        answered = await service.graphql(fine)
        assert "errors" not in answered and len(answered["data"]) == 30
        refused = await service.graphql(too_many_tokens)
        assert refused["errors"][0]["extensions"]["code"] in {"GRAPHQL_PARSE_FAILED", "GRAPHQL_VALIDATION_FAILED"}
