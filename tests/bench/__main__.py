"""`python -m tests.bench` from a checkout's root: the benchmark (options in `tests/bench/run.py`).
It is not shipped: the installed `credit-ledger` never imports `tests/`."""

from tests.bench.run import main

main()
