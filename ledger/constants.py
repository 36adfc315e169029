"""Every limit in one place, units last in the name."""

from __future__ import annotations

# Streams and workers.
partition_count_default = 64
batch_size_max = 1_000
read_block_ms = 200
stream_length_max = 1_000_000
lease_ttl_ms = 5_000
# Renewals per TTL: a lease survives a few missed renewals before it lapses.
lease_renewals_per_ttl = 5
# Organizations whose state a ledger worker keeps in memory between batches.
warm_organizations_max = 50_000

# Callers.
apply_wait_timeout_ms = 5_000
usage_batch_max = 1_000

# Servers.
server_start_timeout_s = 60
server_stop_timeout_s = 30
pool_size_max = 10
