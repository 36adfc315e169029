"""The catalog as the operator configures it: the example shipped with the package
(`graphql_api/catalog.toml`), a catalog file read and stored whole (`credit-ledger catalog load
FILE`, and `serve` at start-up with CREDIT_LEDGER_CATALOG_FILE)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import asyncpg

from ledger.billing.catalog import Catalog
from ledger.billing.catalog_file import CatalogDocument, parse_catalog, read_document
from ledger.core import bounds
from ledger.core.errors import CatalogInvalid
from ledger.store.catalog_versions import CatalogSave, save_catalog
from ledger.store.pool import create_pool


def example_catalog_text() -> str:
    return resources.files("graphql_api").joinpath("catalog.toml").read_text(encoding="utf-8")


def example_catalog() -> Catalog:
    return parse_catalog(example_catalog_text())


def read_catalog_file(path: Path) -> CatalogDocument:
    """The catalog a file describes, or CatalogInvalid (one too large is not read past its bound)."""
    try:
        with path.open("rb") as file:
            data = file.read(bounds.CATALOG_DOCUMENT_BYTES_MAX + 1)
    except OSError as error:
        raise CatalogInvalid(f"cannot read the catalog file: {error.strerror or error}") from None
    if len(data) > bounds.CATALOG_DOCUMENT_BYTES_MAX:
        raise CatalogInvalid(f"a catalog document is at most {bounds.CATALOG_DOCUMENT_BYTES_MAX:,} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise CatalogInvalid(f"a catalog file is UTF-8 text (byte {error.start} is not)") from None
    return read_document(text)


async def save_catalog_to(pool: asyncpg.Pool, catalog: Catalog, *, settings: bool = True) -> CatalogSave:
    async with pool.acquire() as connection:
        return await save_catalog(connection, catalog, settings=settings)


async def load_catalog_file(database_url: str, path: Path) -> CatalogSave:
    """Read `path` and store its versions, all or none (CatalogInvalid changes nothing)."""
    document = read_catalog_file(path)
    pool = await create_pool(database_url)
    try:
        return await save_catalog_to(pool, document.catalog, settings=document.has_settings)
    finally:
        await pool.close()
