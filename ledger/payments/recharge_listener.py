"""The auto-recharge wake-up: a LISTEN on `credit_ledger_recharge`, which the AUTO_RECHARGE
TRIGGERED alert event's row NOTIFYs as it is written (migration 016), so a crossing is charged
within moments instead of at the next cron sweep.

The notification only wakes a pass; the pass reads what is to do from the tables, so a lost
notification (the connection dropped, the process restarted) costs nothing but time: the pass run
on every (re)connection and the cron sweep find what it would have found. Notifications that arrive
during a pass coalesce into one more pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import asyncpg

from ledger import constants

log = logging.getLogger(__name__)

CHANNEL = "credit_ledger_recharge"


class RechargeListener:
    def __init__(self, database_url: str, run_pass: Callable[[], Awaitable[int]]) -> None:
        self._database_url = database_url
        self._run_pass = run_pass
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.passes = 0  # passes run (for tests and logs)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="recharge-listener")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                connection = await asyncpg.connect(self._database_url)
            except (OSError, asyncpg.PostgresError) as error:
                log.warning("recharge listener cannot connect (retrying): %s", error)
                await asyncio.sleep(constants.recharge_listener_reconnect_s)
                continue
            try:
                await self._listen(connection)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
                log.warning("recharge listener lost its connection (reconnecting): %s", error)
            finally:
                with contextlib.suppress(Exception):
                    await connection.close(timeout=1)
            await asyncio.sleep(constants.recharge_listener_reconnect_s)

    async def _listen(self, connection: asyncpg.Connection) -> None:
        lost = asyncio.Event()
        connection.add_termination_listener(lambda _: lost.set())
        await connection.add_listener(CHANNEL, lambda *_: self._wake.set())
        self._wake.set()  # what was written while nobody listened
        while not lost.is_set():
            wake = asyncio.ensure_future(self._wake.wait())
            gone = asyncio.ensure_future(lost.wait())
            try:
                await asyncio.wait({wake, gone}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                wake.cancel()
                gone.cancel()
            if self._wake.is_set():
                self._wake.clear()
                await self._pass()

    async def _pass(self) -> None:
        try:
            handled = await self._run_pass()
        except Exception:
            log.exception("recharge pass failed; the next wake-up or sweep tries again")
            return
        self.passes += 1
        if handled:
            log.info("recharge pass: %d recharge(s)", handled)
