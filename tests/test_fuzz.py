"""The schema fuzzed against the running service (hypothesis-graphql): valid and schema-violating
queries, mutations and documents, as the admin and as a Creator. Whatever comes in, the answer is
never a 5xx, never an unexpected error (INTERNAL), and never shows a stack trace or SQL; every
error carries a code."""

from __future__ import annotations

import asyncio
import os
import re
import uuid
from typing import Any

import asyncpg
import graphql
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import Mode, from_schema, nodes

from ledger.core.errors import ErrorCode, LedgerError, error_for
from tests.conftest import Service, repository_root
from tests.ledger_api import Ledger
from tests.principals import cast

# More examples on request: CREDIT_LEDGER_FUZZ_EXAMPLES=2000 pytest tests/test_fuzz.py
examples = int(os.environ.get("CREDIT_LEDGER_FUZZ_EXAMPLES", "100"))
LEAKS = re.compile(r"Traceback|File \"|asyncpg|psycopg|SELECT |INSERT |UPDATE |DELETE FROM|\.py\b|line \d+ in ")


def documented_codes() -> set[str]:
    """Every code in the README's error table (its "### Errors" section)."""
    readme = (repository_root() / "README.md").read_text()
    section = readme.split("### Errors", 1)[1].split("\n#", 1)[0]
    first_cells = [line.split("|")[1] for line in section.splitlines() if line.startswith("| `")]
    return set(re.findall(r"`([A-Z_]+)`", "\n".join(first_cells)))


# An unexpected error (INTERNAL) is a bug, so the fuzz accepts every documented code but that one.
CODES = documented_codes() - {"INTERNAL"}


def _strings(*known: str) -> st.SearchStrategy[graphql.StringValueNode]:
    values = st.one_of(st.sampled_from(known) if known else st.nothing(), st.text(max_size=40))
    return values.map(nodes.String)


def scalars(ids: list[str]) -> dict[str, st.SearchStrategy[Any]]:
    amounts = ("1", "0", "-5", "0.000001", "0.0000001", "1e9", "99999999999999999999", "NaN", "", " 2 ")
    return {
        "ID": _strings(*ids, "not-a-uuid", str(uuid.uuid4())),
        "Credits": _strings(*amounts),
        "Quantity": _strings(*amounts),
        "DateTime": _strings("2026-01-01T00:00:00+00:00", "2099-01-01T00:00:00Z", "2026-01-01T00:00:00", "yesterday"),
    }


# The schema grew with payments and invoices: about 90 s alone on this machine, more under load.
@pytest.mark.timeout(300)
async def test_fuzz_the_schema(service: Service, pool: asyncpg.Pool) -> None:
    people = await cast(pool, service.admin_key)
    org = Ledger(service, str(people.org_a))
    await org.accepted("grantCredits", amount="1000")
    team = await org.team("Fuzzed")
    ids = [str(people.org_a), str(people.org_b), team]
    from graphql_api.schema import graphql_schema

    built = graphql_schema()
    problems: list[str] = []
    credentials = [service.admin_key, people.credentials["creator_user"]]

    def fuzz(mode: Mode, credential: str) -> None:
        @settings(
            max_examples=examples,
            deadline=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        @given(document=from_schema(built, custom_scalars=scalars(ids), mode=mode))
        def run(document: str) -> None:
            response = httpx.post(
                f"{service.url}/graphql",
                json={"query": document},
                headers={"authorization": f"Bearer {credential}"},
                timeout=30,
            )
            problem = _problem(response, document)
            if problem is not None:
                problems.append(f"{problem}\n  document: {document}\n  answer: {response.text[:600]}")

        run()

    for credential in credentials:
        for mode in (Mode.POSITIVE, Mode.NEGATIVE):
            # In a thread: the service answers on this test's event loop.
            await asyncio.to_thread(fuzz, mode, credential)
    assert problems == [], "\n".join(problems[:10])


def _problem(response: httpx.Response, document: str) -> str | None:
    if response.status_code >= 500:
        return f"HTTP {response.status_code}"
    # An answer may quote the client's own strings back ("not an ISO 8601 time: 'SELECT 1'"): that
    # is no leak, so the document's string literals are taken out before looking.
    text = response.text
    for literal in sorted(set(re.findall(r'"((?:[^"\\]|\\.)+)"', document)), key=len, reverse=True):
        text = text.replace(literal, "")
    if LEAKS.search(text):
        return "leaks internals"
    body = response.json()
    for error in body.get("errors") or []:
        code = (error.get("extensions") or {}).get("code")
        if code not in CODES:
            return f"error code {code!r}"
    return None


def test_the_readme_error_table_is_the_error_registry() -> None:
    """Both directions: every code the API can answer is documented, and nothing else is."""
    registry = {code.value for code in ErrorCode}
    assert registry - documented_codes() == set(), "codes the README's error table does not explain"
    assert documented_codes() - registry == set(), "codes the README explains that the API never answers"


def test_every_stored_rejection_maps_back_to_its_error() -> None:
    classes = LedgerError.__subclasses__()
    assert len({cls.code for cls in classes}) == len(classes), "two error classes share a code"
    for cls in classes:
        error = error_for(cls.code.value, "why")
        assert (type(error), error.code, error.message) == (cls, cls.code, "why")
