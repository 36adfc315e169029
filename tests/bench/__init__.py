"""The ledger's benchmark: baselines (pgbench, raw Redis XADD) and the service, measured in one run
on this machine against durable embedded servers. Run `python -m tests.bench` from the
repository root; `--quick` for a smoke run. Not a pytest test."""
