"""`credit-ledger`: one command for the whole service, or each part alone for scale-out.

credit-ledger serve          API + ledger worker(s) + jobs, supervised, on embedded servers by default
credit-ledger api            the GraphQL API alone
credit-ledger ledger-worker  one ledger worker process
credit-ledger jobs           the arq periodic-jobs worker
credit-ledger migrate        apply database migrations
credit-ledger demo           load the example catalog and organizations, then generate usage
credit-ledger catalog load FILE   store a catalog file's new versions, all or none (a refused file: exit 1)
credit-ledger dead-letters   list|retry ID|drop ID: commands the ledger set aside (`... dead-letters --help`)

The benchmark is not part of the installed command: run `python -m tests.bench` from a checkout.
A setting whose variable holds a value it does not accept stops every role before it starts.
With CREDIT_LEDGER_CATALOG_FILE set, `serve` loads that catalog file first; a refused one stops it.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

from graphql_api.shell.bootstrap import bootstrap_admin_key
from graphql_api.shell.catalog import load_catalog_file, read_catalog_file
from graphql_api.shell.supervisor import Supervisor
from ledger import constants
from ledger.core.errors import CatalogInvalid
from ledger.runtime.servers import embedded_servers_started_here, migrate_now, servers
from ledger.runtime.settings import Settings, SettingsError
from ledger.store.pool import create_pool
from ledger.store.verify import verify

log = logging.getLogger("credit_ledger")


def _api(settings: Settings) -> None:
    # Imported here for start-up cost: Strawberry and uvicorn take ~0.4 s that no other role needs.
    import uvicorn

    from graphql_api.app import create_app

    # No access log: a line per request costs the API about a tenth of its CPU at load.
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level="info",
        access_log=False,
        lifespan="on",
        ws_max_size=settings.max_request_bytes,
    )


def _ledger_worker(settings: Settings) -> None:
    # Imported here for start-up cost: the worker loop (~0.1 s) is this role's alone.
    import uvloop

    from ledger.stream.runner import run_ledger_worker

    uvloop.run(run_ledger_worker(settings))


def _jobs(settings: Settings) -> None:
    # Imported here for start-up cost: arq and the jobs (~0.07 s) are this role's alone.
    from jobs.worker import create_worker

    create_worker(settings).run()


def _serve(settings: Settings) -> None:
    # The embedded servers started for this serve are watched and restarted by its supervisor.
    Supervisor(settings, embedded_servers_started_here()).run()


def _demo(settings: Settings) -> None:
    # Imported here for start-up cost: httpx (~0.05 s) is the demo's alone.
    from graphql_api.shell.demo import run_demo

    asyncio.run(run_demo(settings))


def _verify(settings: Settings) -> None:
    async def check() -> int:
        pool = await create_pool(settings.database_url)
        try:
            violations = await verify(pool)
        finally:
            await pool.close()
        for violation in violations:
            print(f"{violation.rule}\t{violation.organization_id}\t{violation.detail}")
        print(f"{len(violations)} violation(s)")
        return len(violations)

    if asyncio.run(check()):
        sys.exit(1)


def _dead_letters(argv: list[str]) -> None:
    """`credit-ledger dead-letters list [--count N] | retry ID | drop ID`: its own arguments, on the
    Redis the settings name (or the embedded servers of the state directory)."""
    parser = argparse.ArgumentParser(
        prog="credit-ledger dead-letters", description="Commands the ledger set aside instead of applying them."
    )
    actions = parser.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="the oldest dead letters, oldest first")
    listing.add_argument("--count", type=int, default=constants.dead_letter_list_default_count)
    retrying = actions.add_parser("retry", help="send the command again, as it was sent; delete the dead letter")
    retrying.add_argument("id")
    actions.add_parser("drop", help="delete the dead letter for good").add_argument("id")
    arguments = parser.parse_args(argv)
    with servers(Settings.from_environment()) as resolved:
        failed = asyncio.run(_dead_letter_action(resolved, arguments))
    if failed:
        sys.exit(1)


async def _dead_letter_action(settings: Settings, arguments: argparse.Namespace) -> bool:
    """Run one dead-letter action, printing its outcome; True if it failed."""
    # Imported here for start-up cost: redis.asyncio (~0.03 s) is needed by these tools alone.
    from ledger.stream import dead_letters
    from ledger.stream.connection import redis_client

    client = redis_client(settings)
    try:
        if arguments.action == "list":
            letters = await dead_letters.list_dead_letters(client, arguments.count)
            for letter in letters:
                print(
                    f"{letter.id}\tpartition {letter.partition}\tentry {letter.entry_id}\t{letter.at.isoformat()}"
                    f"\t{letter.organization_id or '-'}\t{letter.command_type or '-'}\t{letter.error}: {letter.message}"
                )
            print(f"{len(letters)} dead letter(s)")
            return False
        if arguments.action == "retry":
            try:
                entry_id = await dead_letters.retry(client, arguments.id)
            except dead_letters.NothingToReplay as error:
                print(error)
                return True
            print(f"no dead letter {arguments.id}" if entry_id is None else f"{arguments.id} sent again as {entry_id}")
            return entry_id is None
        dropped = await dead_letters.drop(client, arguments.id)
        print(f"dropped {arguments.id}" if dropped else f"no dead letter {arguments.id}")
        return not dropped
    finally:
        await client.aclose()


def _catalog(argv: list[str]) -> None:
    """`credit-ledger catalog load FILE`: the file checked whole before any server starts, then
    its new versions stored on the database the settings name (migrated first, like any role)."""
    parser = argparse.ArgumentParser(prog="credit-ledger catalog", description="The catalog as configuration.")
    actions = parser.add_subparsers(dest="action", required=True)
    loading = actions.add_parser("load", help="store the file's versions not stored yet; refuse it whole if wrong")
    loading.add_argument("file", type=Path)
    arguments = parser.parse_args(argv)
    path: Path = arguments.file
    try:
        read_catalog_file(path)  # refused before any server is started
        with servers(Settings.from_environment()) as resolved:
            migrate_now(resolved)
            saved = asyncio.run(load_catalog_file(resolved.database_url, path))
    except CatalogInvalid as error:
        sys.exit(f"{path}: {error.message}")
    print(f"{path.name}: {saved.added} versions added, {saved.unchanged} unchanged")


def _load_catalog_at_start(settings: Settings) -> None:
    """CREDIT_LEDGER_CATALOG_FILE, loaded before `serve` starts anything; a refused file stops it."""
    path = Path(settings.catalog_file)
    try:
        saved = asyncio.run(load_catalog_file(settings.database_url, path))
    except CatalogInvalid as error:
        sys.exit(f"credit-ledger: CREDIT_LEDGER_CATALOG_FILE {path}: {error.message}")
    log.info("catalog %s: %d versions added, %d unchanged", path, saved.added, saved.unchanged)


ROLES = {
    "serve": _serve,
    "api": _api,
    "ledger-worker": _ledger_worker,
    "jobs": _jobs,
    "migrate": lambda settings: None,
    "demo": _demo,
    "verify": _verify,
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="credit-ledger", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("role", choices=[*sorted(ROLES), "export-schema", "dead-letters", "catalog"])
    parser.add_argument("--log-level", default="INFO")
    argv = sys.argv[1:] if argv is None else argv
    try:
        _run(parser, argv)
    except SettingsError as error:
        # One line naming the variable and what it accepts, no traceback: the operator's typo.
        sys.exit(f"credit-ledger: {error}")


def _run(parser: argparse.ArgumentParser, argv: list[str]) -> None:
    if argv[:1] == ["dead-letters"]:  # its own subcommands and arguments
        _dead_letters(argv[1:])
        return
    if argv[:1] == ["catalog"]:
        logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        _catalog(argv[1:])
        return
    arguments = parser.parse_args(argv)
    if arguments.role == "export-schema":
        # Imported here for start-up cost: building the schema (~0.3 s) is this command's alone.
        from graphql_api.schema import schema_text

        sys.stdout.write(schema_text())
        return
    logging.basicConfig(level=arguments.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # SIGTERM stops a role the way Ctrl-C does, so embedded servers are always stopped on the way out.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    settings = Settings.from_environment()
    try:
        with servers(settings) as resolved:
            applied = migrate_now(resolved)
            if applied:
                log.info("applied migrations %s", applied)
            if arguments.role in {"serve", "api"}:
                embedded = not (settings.database_url and settings.redis_url)
                asyncio.run(bootstrap_admin_key(resolved, embedded=embedded))
            if arguments.role == "serve" and resolved.catalog_file:
                _load_catalog_at_start(resolved)
            ROLES[arguments.role](resolved)
    except KeyboardInterrupt:
        pass
    sys.exit(0)


if __name__ == "__main__":
    main()
