"""`credit-ledger catalog load FILE` as an operator runs it (the installed console script, in a
fresh process): a second load of the same file changes nothing, a refused file exits 1 with the
refusal's line and field and changes nothing; and `serve` with a refused CREDIT_LEDGER_CATALOG_FILE
stops before it starts anything."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import asyncpg

from graphql_api.shell.catalog import example_catalog_text
from ledger.runtime.settings import Settings


def _credit_ledger(settings: Settings, *arguments: str, **variables: str) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).parent / "credit-ledger"
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CREDIT_LEDGER_")}
    environment |= {"DATABASE_URL": settings.database_url, "REDIS_URL": settings.redis_url, **variables}
    return subprocess.run([str(script), *arguments], env=environment, capture_output=True, text=True, timeout=60)


async def _versions(pool: asyncpg.Pool) -> int:
    count: int = await pool.fetchval(
        "SELECT (SELECT count(*) FROM catalog_entries) + (SELECT count(*) FROM catalog_rates)"
    )
    return count


async def test_load_twice_then_a_refused_file(settings: Settings, pool: asyncpg.Pool, tmp_path: Path) -> None:
    path = tmp_path / "catalog.toml"
    path.write_text(example_catalog_text())
    first = _credit_ledger(settings, "catalog", "load", str(path))
    assert first.returncode == 0, first.stderr
    total = await _versions(pool)
    assert first.stdout == f"catalog.toml: {total} versions added, 0 unchanged\n"
    assert await pool.fetchval("SELECT count(*) FROM products") == 14  # every product with a rate: all but storage.gb
    second = _credit_ledger(settings, "catalog", "load", str(path))
    assert (second.returncode, second.stdout) == (0, f"catalog.toml: 0 versions added, {total} unchanged\n")

    # A later version of a plan that is fine, and a broken one: nothing of the file is stored.
    broken = example_catalog_text().replace('name = "SELL"', 'name = "SELL"\nseats_included = -1', 1)
    path.write_text(
        broken + '\n[[plans]]\nkey = "new-plan"\n[[plans.versions]]\neffective_at = 2026-01-01T00:00:00Z\nname = "N"\n'
    )
    refused = _credit_ledger(settings, "catalog", "load", str(path))
    line = broken.splitlines().index("seats_included = -1") + 1
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        f'{path}: line {line}: plans[1] "meclabs-sell" versions[0].seats_included: must be 0 to 1,000,000'
    )
    assert refused.stdout == "" and await _versions(pool) == total


def test_serve_stops_on_a_refused_catalog_file(settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "catalog.toml"
    path.write_text('[catalog]\ncurrency = "usd"\n')
    done = _credit_ledger(
        settings, "serve", CREDIT_LEDGER_CATALOG_FILE=str(path), CREDIT_LEDGER_STATE_DIR=str(tmp_path / "state")
    )
    assert done.returncode == 1
    assert done.stderr.splitlines()[-1] == (
        f"credit-ledger: CREDIT_LEDGER_CATALOG_FILE {path}: line 2: catalog.currency: an ISO 4217 code such as USD, "
        "not 'usd'"
    )
