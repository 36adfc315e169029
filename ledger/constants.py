"""Every limit in one place, units last in the name."""

from __future__ import annotations

# Streams and workers.
partition_count_default = 64
batch_size_max = 1_000
read_block_ms = 200
stream_length_max = 1_000_000
lease_ttl_ms = 5_000
lease_renew_interval_ms = 1_000

# Callers.
apply_wait_timeout_ms = 5_000
usage_batch_max = 1_000

# Servers.
server_start_timeout_s = 60
server_stop_timeout_s = 30
pool_size_max = 10
