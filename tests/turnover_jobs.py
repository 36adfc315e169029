"""The real jobs worker (`jobs.worker.create_worker`, every cron of it) on a simulated clock, for
the turnover test: the job context's clock reads the time the test last wrote to the file named by
TURNOVER_TEST_CLOCK_FILE, so the job code runs unchanged without knowing its time is not the wall's.

    python -m tests.turnover_jobs   (with DATABASE_URL, REDIS_URL and the ledger's settings set)
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

from jobs.worker import create_worker
from ledger.runtime.settings import Settings

CLOCK_FILE_VARIABLE = "TURNOVER_TEST_CLOCK_FILE"


def file_clock(path: Path) -> datetime:
    return datetime.fromisoformat(path.read_text().strip())


def main() -> None:
    path = Path(os.environ[CLOCK_FILE_VARIABLE])
    worker = create_worker(Settings.from_environment())
    worker.ctx["clock"] = lambda: file_clock(path)
    worker.run()


if __name__ == "__main__":
    main()
