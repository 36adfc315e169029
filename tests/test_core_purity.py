"""The ledger core stays pure: no database, cache, web or clock access."""

import ast

from tests.conftest import repository_root

FORBIDDEN = {"asyncpg", "redis", "strawberry", "starlette", "uvicorn", "arq", "stripe", "httpx", "socket", "time"}


def test_core_imports_no_io() -> None:
    core = repository_root() / "ledger" / "core"
    offenders = []
    for path in sorted(core.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path.name}: {name}" for name in names if name.split(".")[0] in FORBIDDEN]
    assert offenders == []


def test_core_never_reads_the_clock() -> None:
    core = repository_root() / "ledger" / "core"
    for path in core.glob("*.py"):
        text = path.read_text()
        assert "datetime.now" not in text and ".utcnow" not in text, path.name
