"""A small client for the ledger's GraphQL mutations and reads, for tests that speak the API."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tests.conftest import Service

OUTCOME = """
commandId transactionId status creditsCharged balanceAfter rejection { code message }
details { name value } lotId holdId quoteId
"""
_keys = itertools.count()


@dataclass
class Ledger:
    """One organization seen through the API."""

    service: Service
    org: str

    @classmethod
    async def create(cls, service: Service, name: str) -> Ledger:
        body = await service.graphql("mutation($n: String!) { createOrganization(input: {name: $n}) { id } }", n=name)
        return cls(service, body["data"]["createOrganization"]["id"])

    async def team(self, name: str) -> str:
        body = await self.service.graphql(
            "mutation($o: ID!, $n: String!) { createTeam(input: {organizationId: $o, name: $n}) { id } }",
            o=self.org,
            n=name,
        )
        return str(body["data"]["createTeam"]["id"])

    async def send(self, mutation: str, **fields: Any) -> dict[str, Any]:
        """Run a ledger mutation (grantCredits, recordUsage, ...) and return its CommandOutcome."""
        input_type = mutation[0].upper() + mutation[1:] + "Input"
        fields.setdefault("idempotencyKey", f"{mutation}-{next(_keys)}")
        body = await self.service.graphql(
            f"mutation($input: {input_type}!) {{ {mutation}(input: $input) {{ {OUTCOME} }} }}",
            input={"organizationId": self.org, **{k: _wire(v) for k, v in fields.items()}},
        )
        assert "errors" not in body, body["errors"]
        outcome: dict[str, Any] = body["data"][mutation]
        outcome["details"] = {d["name"]: d["value"] for d in outcome["details"]}
        return outcome

    async def accepted(self, mutation: str, **fields: Any) -> dict[str, Any]:
        outcome = await self.send(mutation, **fields)
        assert outcome["status"] == "ACCEPTED", outcome
        return outcome

    async def rejected(self, mutation: str, code: str, **fields: Any) -> dict[str, Any]:
        outcome = await self.send(mutation, **fields)
        assert outcome["status"] == "REJECTED", outcome
        assert outcome["rejection"]["code"] == code, outcome
        return outcome

    async def balance(self) -> dict[str, str]:
        body = await self.service.graphql(
            "query($id: ID!) { organization(id: $id) { balance { total held available } } }", id=self.org
        )
        result: dict[str, str] = body["data"]["organization"]["balance"]
        return result

    async def lots(self, include_spent: bool = True) -> dict[str, dict[str, Any]]:
        body = await self.service.graphql(
            """query($id: ID!, $all: Boolean!) { organization(id: $id) { lots(includeSpent: $all) {
                 id kind amount remaining priority effectiveAt expiresAt teamId parentId source } } }""",
            id=self.org,
            all=include_spent,
        )
        return {lot["id"]: lot for lot in body["data"]["organization"]["lots"]}

    async def read(self, selection: str, declarations: str = "", **variables: Any) -> dict[str, Any]:
        """Read `selection` of this organization; `declarations` types extra variables ("$after: String")."""
        body = await self._read(selection, declarations, variables)
        assert "errors" not in body, body["errors"]
        found: dict[str, Any] = body["data"]["organization"]
        return found

    async def read_error(self, selection: str, declarations: str = "", **variables: Any) -> str:
        """The error code reading `selection` of this organization answers (there must be one)."""
        body = await self._read(selection, declarations, variables)
        assert body.get("errors"), body
        code: str = body["errors"][0]["extensions"]["code"]
        return code

    async def _read(self, selection: str, declarations: str, variables: dict[str, Any]) -> dict[str, Any]:
        extra = f", {declarations}" if declarations else ""
        return await self.service.graphql(
            f"query($id: ID!{extra}) {{ organization(id: $id) {{ {selection} }} }}",
            id=self.org,
            **{name: _wire(value) for name, value in variables.items()},
        )


def _wire(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _wire(v) for k, v in value.items()}
    return value
