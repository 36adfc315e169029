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

# Dead letters.
# A pending entry delivered more often than this (each new owner's claim is a delivery) kept killing
# the workers that held it: it is dead-lettered unapplied. Well above the fault tests' crash rate
# (15% a batch): an ordinary entry would need eight deaths in a row while applied alone.
dead_letter_deliveries_max = 10
# From this many deliveries a pending entry is applied alone, so that a crash names it (and only
# it gets closer to the bound above); fewer is what one ordinary crash leaves behind.
dead_letter_alone_deliveries_min = 3
# The dead-letter stream keeps about this many of the newest (every one is also logged).
dead_letter_stream_length_max = 100_000
# Error text kept in a dead letter (a store's message may quote a whole statement).
dead_letter_message_length_max = 1_000
# Dead letters `credit-ledger dead-letters list` shows unless told otherwise.
dead_letter_list_default_count = 100

# Health and supervision.
# A partition whose oldest pending entry was delivered this long ago without being acknowledged is
# stalled: a live owner acknowledges within a batch, and a dead one's entries are claimed again
# (which counts as a delivery) within a lease's time-to-live.
partition_stall_max_ms = 30_000
# How long /readyz waits for the ledger's health figures from Redis.
ledger_health_timeout_ms = 2_000
# A ledger worker that dies is started again after a back-off that doubles up to this, so the ledger
# is never long without one however often they die.
worker_restart_delay_min_ms = 500
worker_restart_delay_max_ms = 2_000
# A child that ran this long without dying starts its back-off from the minimum again.
child_healthy_run_ms = 10_000
# Between tries to start a crashed embedded PostgreSQL while its old backends still hold memory.
server_restart_retry_ms = 500


# --- Ledger side (ledger/core, ledger/store, ledger/stream, jobs) --------------------------------
# Ledger worker.
# Commands applied between yields to the event loop, so the worker's other tasks run during a big batch.
apply_slice_commands = 100
# Between turns while PostgreSQL or Redis is out.
worker_retry_delay_s = 0.5
# Entries a read asks of each partition at the least, however many partitions share the batch.
read_share_min = 16
# A lease renewal counts for this share of its TTL, leaving room for clock drift between a worker
# and Redis.
lease_validity_share = 0.8
# Connections to Redis and PostgreSQL made by the ledger's processes.
redis_socket_timeout_s = 10
redis_connect_timeout_s = 5
# What asyncpg gives one statement before it cancels it.
pool_command_timeout_s = 30
# Pub/sub: messages a listener may have waiting; past this the oldest is dropped (a meter only
# needs the newest reading).
pubsub_listener_queue_length_max = 100
pubsub_reconnect_delay_s = 0.2
# How long one wait for a pub/sub message lasts before the listener looks again.
pubsub_poll_timeout_s = 1.0
# Between tries to listen again for catalog changes after the listening connection was lost.
catalog_listener_reconnect_interval_s = 1.0
# Alert rules an organization may have.
alerts_per_organization_max = 100
# Jobs.
job_timeout_s = 60
# The jobs worker's connections: the recharge runner's `recharge_concurrency` crossings at once (a
# charge may briefly take a second connection while holding one) plus 4 for the other crons.
job_pool_size_max = 20
# Organizations one expiry run sends an Expire to; the rest wait for the next minute's run.
expiry_organizations_per_run_max = 10_000
# A partition holding more unprocessed entries than this is logged as a warning.
backlog_warning_count = 10_000
# Billing periods' turnover (jobs/turnover.py): subscriptions one run advances, and the facts it
# records for one subscription (a few a month: a catch-up of a year takes a run or two), so no run
# stalls; a run also ends after its time budget (well within the job's timeout), and the rest wait
# for the next minute's run. A subscription whose facts failed (the ledger refused one, or did not
# answer) waits this long before it is tried again.
turnover_subscriptions_per_run_max = 1_000
turnover_facts_per_subscription_max = 40
turnover_run_max_s = 30.0
turnover_retry_delay_s = 60
# Invoices (jobs/invoices.py): a billing period is invoiced this long after its end (usage sent
# just before the end is journaled by then), at most this many per run; Net-N terms come from the
# plan (`invoice_terms_days`).
invoice_issue_delay_s = 300
invoices_per_run_max = 500
# Periods that ended longer ago than this are not looked for any more: each is invoiced minutes
# after its end (or after a stop of the jobs), and the bound keeps the cron's query on recent facts.
invoice_look_back_days = 400
# Dunning (seed 000): a failed renewal charge is retried on these days after the first failure,
# and the organization is suspended this many days after it if the invoice is still unpaid; one
# run handles at most this many dunning rows.
dunning_retry_days = (1, 3, 5)
dunning_suspend_days = 7
dunning_per_run_max = 500
# --- end of the ledger side ---------------------------------------------------------------------

# --- API (graphql_api) --------------------------------------------------------------------------
# Query limits, checked before a document is parsed (tokens, selections) or at validation.
query_depth_max = 12
query_aliases_max = 30
query_tokens_max = 5_000
# Fields, fragment spreads and inline fragments in one document. The largest documents the tests
# send (every field two levels down) select about 150; a client that needs more sends several.
query_selections_max = 500
# Nesting of the request's JSON (the body, its variables, an input inside them). The deepest a
# legitimate request goes is about six (a usage batch's event dimensions); graphql-core coerces
# variables recursively, so a bound well under the interpreter's recursion limit keeps it safe.
json_depth_max = 32
# Parsed and validated documents kept: a public endpoint must not let distinct query texts grow
# memory without limit.
documents_cached_max = 256
# Rows a page of transactions or alert events holds at most (`first`).
page_size_max = 200
# A usage report reads the journal directly: its range, its buckets and its rows are bounded.
usage_range_max_days = 366
usage_buckets_max = 1_000
usage_rows_max = 10_000
# Live subscriptions: operations one WebSocket connection may run at once (each holds a listener
# and a task); how often a running one checks its caller's access again; journal rows read at a time.
subscriptions_per_connection_max = 100
access_recheck_s = 30.0
journal_page_max = 200
# What one API process remembers of organizations (rows never change) and products (their cheapest
# rate, read again after `product_rates_ttl_s`: a catalog edit shows within that).
known_organizations_max = 100_000
known_products_max = 10_000
product_rates_ttl_s = 10.0
# A balance snapshot older than this is not answered from (PostgreSQL is read instead).
balance_snapshot_age_max_s = 30.0
# A key's last_used_at is written at most this often per process (it says roughly when it was used).
key_last_used_interval_s = 60.0
# Authentication: verified API keys kept per process (so usage costs no query) and for how long;
# how long past its refresh a verified key is still accepted while PostgreSQL cannot be reached.
key_cache_ttl_s = 5.0
key_cache_max = 10_000
stale_key_max_s = 600.0
# User tokens minted by createUserToken live from a minute to 30 days.
user_token_ttl_min_s = 60
user_token_ttl_max_s = 30 * 24 * 3600
# How long an invitation's token works at most (inviteMember's expiresInHours): 30 days.
invitation_ttl_max_hours = 30 * 24
# Invoice PDFs: a signed link (an invoice's `pdfUrl`) works this long, then ask for the invoice
# again; one PDF renders at most this many lines (a period's facts: a few dozen), and its PDF
# download is refused beyond them rather than compiled at any size.
invoice_pdf_link_ttl_s = 24 * 3600
invoice_pdf_lines_max = 500
# The revenue report: its window at most, and the sources (transactions, invoice lines) each
# figure lists at most (its totals always count them all; `sourcesTruncated` says when cut).
revenue_report_range_max_days = 366
revenue_report_sources_max = 1_000

# --- Process shell and runtime (ledger/runtime, graphql_api/shell) --------------------------------
# Embedded servers.
# Connections the embedded PostgreSQL accepts: the pools of a `serve` (API, ledger workers, jobs)
# and of the test suite's processes, with room to spare.
embedded_postgres_connections_max = 200
# A starting server's port (and a new PostgreSQL's first session) is tried this often, each
# connection attempt given this long.
server_start_poll_interval_s = 0.05
server_probe_timeout_s = 0.5
# A server asked to stop is checked this often for having exited (up to server_stop_timeout_s).
server_stop_poll_interval_s = 0.02
# Supervision (`credit-ledger serve`).
# How often the supervisor looks at its children and servers: a dead one is seen within this.
supervisor_poll_interval_s = 0.1
# A child asked to stop (SIGTERM) is killed after this: a ledger worker finishes its batch well
# within it.
child_stop_timeout_s = 20
# A restart of a crashed embedded server that failed is tried again after this.
server_restart_failure_retry_s = 2
# Settings' defaults that are limits (each can be set by its CREDIT_LEDGER_ variable).
# The largest HTTP body (and WebSocket message) accepted: a 1,000-event recordUsageBatch is ~310 KB.
request_size_max_default_bytes = 1_048_576
# "<requests per second>/<burst>" per caller (API key or user) and per organization.
rate_limit_caller_default = "200/400"
rate_limit_organization_default = "500/1000"
# What `credit-ledger demo` gives one request to the running service.
demo_request_timeout_s = 10
# --- end of the process shell and runtime ---------------------------------------------------------

# --- Payments (ledger/payments, graphql_api/billing/payments, jobs/payments) -----------------------
# A webhook's signed timestamp may be this old (Stripe's own default tolerance).
stripe_webhook_tolerance_s = 300
# One call to Stripe waits this long; connection errors are retried this often (same idempotency key).
stripe_request_timeout_s = 20.0
stripe_network_retries_max = 2
# Largest page asked of Stripe's lists (Stripe's own maximum), and payment methods shown per org.
stripe_page_size_max = 100
payment_methods_listed_max = 100
# The reconciliation: re-reads this far before its cursor (events of one second may arrive apart),
# pages through at most this many events per run, re-checks payments unsettled for this long, at most
# this many per run.
stripe_events_overlap_s = 60
stripe_events_per_run_max = 1_000
payments_unsettled_after_s = 120
payments_rechecked_per_run_max = 200
# A payment still without an intent is created again (same idempotency key) only this long after it
# was made: within Stripe's 24 hours of idempotency, with an hour to spare.
payments_creating_retry_max_s = 23 * 3600
# Payments left unsettled (a 3-D Secure check abandoned) are re-read from Stripe for this long.
payments_recheck_window_s = 7 * 24 * 3600
# The poll's cursor starts this far back the first time it runs.
stripe_events_first_lookback_s = 3 * 24 * 3600
# A client's idempotency key for a payment, and how many payments one page lists.
payment_request_key_length_max = 200
payments_page_max = 100
# The largest single charge, in the currency's minor units (10^10 dollars: past any pack or invoice).
payment_amount_max_minor_units = 10**12
# Pages of a customer's intents read before re-creating a crashed payment's intent (one may exist).
stripe_intent_pages_max = 3
# An event being applied is claimed for this long (a crashed applier's claim lapses, then the poll
# applies it); a paid grant the ledger refused is sent at most this many times (then alerted).
stripe_event_claim_s = 300
payment_grant_attempts_max = 5
# --- end of payments ------------------------------------------------------------------------------

# --- Auto-recharge, refunds and renewal notices (ledger/payments, jobs/recharge) -----------------
# The largest monthly cap an organization may set, in major units of the pack's currency.
auto_recharge_monthly_cap_max = 1_000_000
# The sweep looks this far back for crossings no runner took (the LISTEN wake-up takes them at once),
# takes at most this many per run, and resumes recharges left started (a crash between the row and
# the charge, or a charge still processing) once untouched for this long.
recharge_look_back_s = 7 * 24 * 3600
recharges_per_run_max = 200
recharge_resume_after_s = 60
# Crossings one pass handles at once (each waits for Stripe); one worker runs one pass at a time.
recharge_concurrency = 16
# A crossing older than this, or followed by a later event of its rule (a RESOLVED), is not charged:
# the balance it saw is no longer the case (the runner was down, a payment lifted it).
recharge_crossing_max_age_s = 600
# Recharges `autoRecharge` lists, newest first.
recharges_listed_max = 50
# The LISTEN connection is opened again after this pause when it was lost.
recharge_listener_reconnect_s = 1.0
# A refund's reason, and the window after an annual plan's period start in which its fee is refunded
# pro rata.
refund_reason_length_max = 500
annual_refund_window_days = 30
# Renewal notices go out this long before a billing period ends (once per period), at most this
# many per hourly run.
renewal_notice_days = 7
renewal_notices_per_run_max = 1_000
# --- end of auto-recharge, refunds and renewal notices -------------------------------------------
