from graphql_api.schema import schema_text
from tests.conftest import repository_root


def test_schema_graphql_matches_the_code() -> None:
    checked_in = (repository_root() / "schema.graphql").read_text()
    assert checked_in == schema_text(), "schema.graphql is stale: run `credit-ledger export-schema > schema.graphql`"


def test_amounts_are_never_32_bit_integers_or_floats() -> None:
    text = schema_text()
    assert "Float" not in text
    for field in ("amount:", "total:", "available:", "held:", "creditsCharged:", "balanceAfter:"):
        for line in text.splitlines():
            if line.strip().startswith(field):
                assert "Credits" in line, line
