"""The migrated schema keeps Citus's rules, so the ledger can be distributed by organization.

The plan (README, Performance: "Citus"): every tenant table is distributed by `org_id`, co-located
with `organizations`, which is distributed by `id`; tables without tenant rows are reference tables
(replicated to every node) or coordinator-local tables (global bookkeeping). Citus then needs:

- every primary key, unique constraint, unique index (partial ones too) and exclusion constraint of
  a distributed table to include its distribution column;
- the distribution column never NULL;
- a foreign key between two distributed tables to pair their distribution columns (then both rows
  are on one shard); from a distributed table only to a distributed or a reference table;
- a reference table to reference only reference tables, a coordinator-local table only reference or
  local tables.

A tenant table is one with an `org_id` column, unless it is listed below as a reference table with
the reason. Every other table must be listed: a new table has to be classified here. A break is
allowed only when listed in ALLOWED with its reason (one today: api_keys' foreign key).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import asyncpg

from ledger.runtime.settings import Settings

DISTRIBUTION_COLUMN = "org_id"
# The tenants' own table, distributed by its key (org_id elsewhere refers to it).
ORGANIZATIONS = ("organizations", "id")

# Replicated to every node: read by every shard's transactions, written rarely.
REFERENCE_TABLES = {
    "catalog_entries": "the catalog: products, prices and plans, the same for every tenant",
    "catalog_rates": "the catalog's rates, read by every debit",
    "products": "the product keys every usage names",
    "partners": "resellers: one partner has many organizations (organizations.partner_id references it)",
    "ledger_partitions": "the stream partitions' fencing tokens: checked by every batch's commit, "
    "written only when a worker takes a partition over",
    "api_keys": "authenticated before any organization is known (by prefix), and platform or partner "
    "keys have none: small, read through the authenticator's cache",
}
# On the coordinator only: global bookkeeping no tenant row joins.
COORDINATOR_TABLES = {
    "schema_migrations": "the migrations applied",
    "service_secrets": "the service's own signing secrets",
    "stripe_cursors": "where the Stripe event poll stands",
    "stripe_events": "Stripe events received, by Stripe's event id, before they are matched to a tenant",
}

# The one break allowed, with the reason (agreed with the lead): Citus cannot keep this foreign key.
ALLOWED = {
    "api_keys: foreign key api_keys_org_id_fkey (org_id) -> organizations: a reference table may not "
    "reference a distributed table": "api_keys is a reference table (looked up by prefix before any "
    "organization is known; platform and partner keys have none): the foreign key is dropped when the "
    "tables are distributed, and the API checks a key's organization itself",
}


@dataclass(frozen=True)
class Key:
    table: str
    name: str
    kind: str  # primary key, unique, unique index, exclusion
    columns: tuple[str, ...]  # () when an expression is part of the key


@dataclass(frozen=True)
class ForeignKey:
    table: str
    name: str
    columns: tuple[str, ...]
    referenced: str
    referenced_columns: tuple[str, ...]


@dataclass(frozen=True)
class Schema:
    tables: frozenset[str]
    org_id_nullable: dict[str, bool]  # tables with an org_id column: is it nullable?
    keys: tuple[Key, ...]
    foreign_keys: tuple[ForeignKey, ...]


_TABLES = """
SELECT c.relname, a.attnotnull AS org_id_not_null, a.attname IS NOT NULL AS has_org_id
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = $2 AND NOT a.attisdropped
WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND NOT c.relispartition
"""
# Keys from constraints (p, u, x) and unique indexes that back no constraint; indkey 0 = an expression.
_KEYS = """
SELECT c.relname AS table_name, i.relname AS name,
       coalesce(k.contype::text, 'i') AS kind,
       array(SELECT a.attname FROM unnest(x.indkey) WITH ORDINALITY AS u (attnum, position)
             JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = u.attnum ORDER BY u.position)::text[] AS columns,
       0 = ANY (x.indkey::int2[]) AS has_expression
FROM pg_index x
JOIN pg_class i ON i.oid = x.indexrelid
JOIN pg_class c ON c.oid = x.indrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_constraint k ON k.conindid = x.indexrelid AND k.contype IN ('p', 'u', 'x')
WHERE n.nspname = $1 AND (x.indisunique OR x.indisexclusion OR k.contype = 'x')
"""
_FOREIGN_KEYS = """
SELECT c.relname AS table_name, k.conname AS name, r.relname AS referenced,
       array(SELECT a.attname FROM unnest(k.conkey) WITH ORDINALITY AS u (attnum, position)
             JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.attnum ORDER BY u.position)::text[]
           AS columns,
       array(SELECT a.attname FROM unnest(k.confkey) WITH ORDINALITY AS u (attnum, position)
             JOIN pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = u.attnum ORDER BY u.position)::text[]
           AS referenced_columns
FROM pg_constraint k
JOIN pg_class c ON c.oid = k.conrelid
JOIN pg_class r ON r.oid = k.confrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = $1 AND k.contype = 'f'
"""
_KINDS = {"p": "primary key", "u": "unique", "x": "exclusion", "i": "unique index"}


async def read_schema(connection: asyncpg.Connection, schema: str) -> Schema:
    tables = await connection.fetch(_TABLES, schema, DISTRIBUTION_COLUMN)
    keys = [
        Key(row["table_name"], row["name"], _KINDS[row["kind"]], () if row["has_expression"] else tuple(row["columns"]))
        for row in await connection.fetch(_KEYS, schema)
    ]
    foreign_keys = [
        ForeignKey(row["table_name"], row["name"], tuple(row["columns"]), row["referenced"],
                   tuple(row["referenced_columns"]))
        for row in await connection.fetch(_FOREIGN_KEYS, schema)
    ]  # fmt: skip
    return Schema(
        tables=frozenset(row["relname"] for row in tables),
        org_id_nullable={row["relname"]: not row["org_id_not_null"] for row in tables if row["has_org_id"]},
        keys=tuple(keys),
        foreign_keys=tuple(foreign_keys),
    )


def distribution_column(schema: Schema, table: str, reference: Iterable[str]) -> str | None:
    """The column a table is distributed by, or None for a reference or local table."""
    if table == ORGANIZATIONS[0]:
        return ORGANIZATIONS[1]
    if table in schema.org_id_nullable and table not in reference:
        return DISTRIBUTION_COLUMN
    return None


def violations(
    schema: Schema, reference: dict[str, str] = REFERENCE_TABLES, local: dict[str, str] = COORDINATOR_TABLES
) -> list[str]:
    """Every break of the rules in the module's docstring, one line each."""
    found: list[str] = []
    distributed = {t: c for t in schema.tables if (c := distribution_column(schema, t, reference)) is not None}
    for table in sorted(schema.tables - set(distributed) - set(reference) - set(local)):
        found.append(f"{table}: not classified (no {DISTRIBUTION_COLUMN}; list it as a reference or local table)")
    for table in sorted(set(local) & set(schema.org_id_nullable)):
        found.append(f"{table}: listed as coordinator-local but has {DISTRIBUTION_COLUMN}")
    for table in sorted(set(reference) & set(local)):
        found.append(f"{table}: listed both as reference and as coordinator-local")
    for table, column in sorted(distributed.items()):
        if column == DISTRIBUTION_COLUMN and schema.org_id_nullable[table]:
            found.append(f"{table}: {DISTRIBUTION_COLUMN} may be NULL")
    for key in sorted(schema.keys, key=lambda k: (k.table, k.name)):
        column = distributed.get(key.table)
        if column is not None and column not in key.columns:
            shown = ", ".join(key.columns) if key.columns else "an expression"
            found.append(f"{key.table}: {key.kind} {key.name} ({shown}) lacks {column}")
    for fk in sorted(schema.foreign_keys, key=lambda k: (k.table, k.name)):
        found.extend(_foreign_key_violations(fk, distributed, reference, local))
    return found


def _foreign_key_violations(
    fk: ForeignKey, distributed: dict[str, str], reference: Iterable[str], local: Iterable[str]
) -> list[str]:
    where = f"{fk.table}: foreign key {fk.name} ({', '.join(fk.columns)}) -> {fk.referenced}"
    source, target = distributed.get(fk.table), distributed.get(fk.referenced)
    if source is not None:
        if target is None:
            return [] if fk.referenced in reference else [f"{where}: a distributed table may reference only "
                                                          "distributed or reference tables"]  # fmt: skip
        pairs = set(zip(fk.columns, fk.referenced_columns, strict=True))
        return [] if (source, target) in pairs else [f"{where}: does not pair {source} with {fk.referenced}.{target}"]
    if target is not None:
        kind = (
            "a reference"
            if fk.table in reference
            else "a coordinator-local"
            if fk.table in local
            else "an unclassified"
        )
        return [f"{where}: {kind} table may not reference a distributed table"]
    if fk.table in reference and fk.referenced not in reference:
        return [f"{where}: a reference table may reference only reference tables"]
    return []


async def _schema(settings: Settings, name: str = "public") -> Schema:
    connection = await asyncpg.connect(settings.database_url)
    try:
        return await read_schema(connection, name)
    finally:
        await connection.close()


async def test_the_lists_name_real_tables(settings: Settings) -> None:
    """A dropped or renamed table leaves the lists too (a new one fails the rules below until listed),
    and an allowed break is one the schema still has."""
    schema = await _schema(settings)
    assert set(REFERENCE_TABLES) | set(COORDINATOR_TABLES) <= schema.tables
    assert not set(REFERENCE_TABLES) & set(COORDINATOR_TABLES)
    assert set(ALLOWED) <= set(violations(schema))


async def test_the_schema_keeps_citus_rules(settings: Settings) -> None:
    found = sorted(set(violations(await _schema(settings))) - set(ALLOWED))
    assert not found, "break(s) of Citus's rules:\n" + "\n".join(found)


async def test_the_rules_catch_each_kind_of_break(settings: Settings) -> None:
    """The checker itself, on a scratch schema with one break of each kind (and one of each right way)."""
    connection = await asyncpg.connect(settings.database_url)
    try:
        await connection.execute("DROP SCHEMA IF EXISTS citus_probe CASCADE; CREATE SCHEMA citus_probe")
        await connection.execute("""
            SET search_path TO citus_probe;
            CREATE TABLE organizations (id uuid PRIMARY KEY);
            CREATE TABLE plans (key text PRIMARY KEY);
            CREATE TABLE audit (id bigint PRIMARY KEY);
            CREATE TABLE lots (org_id uuid NOT NULL REFERENCES organizations (id), id uuid,
                               plan text REFERENCES plans (key), PRIMARY KEY (org_id, id));
            CREATE TABLE charges (org_id uuid NOT NULL REFERENCES organizations (id), id uuid PRIMARY KEY,
                                  number text UNIQUE, lot_id uuid, FOREIGN KEY (org_id, lot_id) REFERENCES lots);
            CREATE UNIQUE INDEX charges_one_per_lot ON charges (lot_id) WHERE lot_id IS NOT NULL;
            CREATE TABLE refunds (org_id uuid, id uuid, charge_id uuid REFERENCES charges (id),
                                  audit_id bigint REFERENCES audit (id), UNIQUE (org_id, id));
            CREATE TABLE lines (charge_id uuid REFERENCES charges (id), n int, PRIMARY KEY (charge_id, n));
            CREATE TABLE plan_owners (plan text REFERENCES plans (key), org_id uuid REFERENCES organizations (id));
        """)  # fmt: skip
        schema = await read_schema(connection, "citus_probe")
    finally:
        await connection.execute("RESET search_path; DROP SCHEMA IF EXISTS citus_probe CASCADE")
        await connection.close()
    found = violations(schema, reference={"plans": "", "plan_owners": ""}, local={"audit": ""})
    assert found == [
        "lines: not classified (no org_id; list it as a reference or local table)",
        "refunds: org_id may be NULL",
        "charges: unique charges_number_key (number) lacks org_id",
        "charges: unique index charges_one_per_lot (lot_id) lacks org_id",
        "charges: primary key charges_pkey (id) lacks org_id",
        "lines: foreign key lines_charge_id_fkey (charge_id) -> charges: an unclassified table may not "
        "reference a distributed table",
        "plan_owners: foreign key plan_owners_org_id_fkey (org_id) -> organizations: a reference table may not "
        "reference a distributed table",
        "refunds: foreign key refunds_audit_id_fkey (audit_id) -> audit: a distributed table may reference only "
        "distributed or reference tables",
        "refunds: foreign key refunds_charge_id_fkey (charge_id) -> charges: does not pair org_id with charges.org_id",
    ]
