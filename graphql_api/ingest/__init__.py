"""`POST /v1/usage`, the bulk ingest route beside GraphQL: up to `usage_batch_max` usage events as
JSON or NDJSON, decoded by compiled structs (`wire`) and answered per event (`route`), with the
checks, authorization, rate limits, idempotency and `ack` of `recordUsageBatch`."""
