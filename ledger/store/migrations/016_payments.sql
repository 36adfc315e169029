-- Payments, invoices, dunning and refunds. Money is integer minor units (cents) with its currency
-- (ISO 4217, upper case). Every fact is guarded by a unique key: one customer per organization, one
-- payment per payment intent (and per client request), one invoice per (subscription, period), one
-- refund per refund id, one webhook event per Stripe event id, one recharge per alert event.
-- What a payment does to credits reaches the org's actor as a command keyed `payment:<intent id>`.

-- One Stripe customer per organization, made on first need.
CREATE TABLE stripe_customers (
    org_id       uuid        PRIMARY KEY REFERENCES organizations (id),
    customer_id  text        NOT NULL UNIQUE CHECK (length(customer_id) BETWEEN 1 AND 255),
    created_at   timestamptz NOT NULL DEFAULT now()
);

-- Every charge we start, whatever it pays for. `request_key` is what makes a client's retry (or a
-- job's) find the payment it started instead of charging again.
CREATE TABLE payments (
    id                 uuid        PRIMARY KEY,
    org_id             uuid        NOT NULL REFERENCES organizations (id),
    request_key        text        NOT NULL CHECK (length(request_key) BETWEEN 1 AND 300),
    purpose            text        NOT NULL CHECK (purpose IN ('pack', 'recharge', 'invoice')),
    pack_key           text,
    invoice_id         uuid,
    amount             bigint      NOT NULL CHECK (amount > 0),
    currency           text        NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    credits            bigint      CHECK (credits > 0),        -- pack and recharge: what is granted
    price_per_credit   numeric,                                -- the grant's cost basis
    payment_method_id  text,
    payment_intent_id  text        UNIQUE,                      -- set once Stripe answered
    status             text        NOT NULL DEFAULT 'creating'
                       CHECK (status IN ('creating', 'processing', 'requires_action', 'succeeded', 'failed', 'canceled')),
    decline_code       text,
    failure_message    text,
    grant_transaction_id uuid,                                  -- the ledger transaction that granted
    lot_id             uuid,                                    -- the purchased lot it granted
    refunded_amount    bigint      NOT NULL DEFAULT 0 CHECK (refunded_amount >= 0),
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    succeeded_at       timestamptz,
    CONSTRAINT payments_request UNIQUE (org_id, request_key),
    CONSTRAINT payments_refund_within CHECK (refunded_amount <= amount)
);
CREATE INDEX payments_org ON payments (org_id, created_at);
CREATE INDEX payments_unsettled ON payments (created_at) WHERE status IN ('creating', 'processing', 'requires_action');

-- Refunds: one per refund id (the client's, or derived), the ledger reversal and the Stripe refund
-- keyed by it, so a retry does neither twice.
CREATE TABLE refunds (
    id                uuid        PRIMARY KEY,
    org_id            uuid        NOT NULL REFERENCES organizations (id),
    payment_id        uuid        NOT NULL REFERENCES payments (id),
    request_key       text        NOT NULL CHECK (length(request_key) BETWEEN 1 AND 300),
    amount            bigint      NOT NULL CHECK (amount > 0),
    currency          text        NOT NULL,
    credits           bigint      NOT NULL CHECK (credits >= 0),
    reason            text        NOT NULL DEFAULT '',
    ledger_transaction_id uuid,
    stripe_refund_id  text        UNIQUE,
    status            text        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'succeeded', 'failed')),
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT refunds_request UNIQUE (org_id, request_key)
);

-- Webhook inbox (and what the reconciliation poll found): each Stripe event id once.
CREATE TABLE stripe_events (
    id           text        PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 255),
    type         text        NOT NULL,
    created      timestamptz NOT NULL,
    payload      jsonb       NOT NULL,
    received_via text        NOT NULL CHECK (received_via IN ('webhook', 'poll')),
    received_at  timestamptz NOT NULL DEFAULT now(),
    applied_at   timestamptz,
    error        text
);
CREATE INDEX stripe_events_unapplied ON stripe_events (received_at) WHERE applied_at IS NULL;

-- Where the reconciliation poll of /v1/events got to (one row per cursor name).
CREATE TABLE stripe_cursors (
    name        text        PRIMARY KEY,
    created     bigint      NOT NULL,   -- the newest event's `created` seen (Unix seconds)
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Auto-recharge settings per organization (seed 004): below `threshold` micro-credits, buy `pack_key`,
-- at most `monthly_cap` (minor units of the pack's currency) charged per calendar month (UTC).
CREATE TABLE auto_recharge (
    org_id       uuid        PRIMARY KEY REFERENCES organizations (id),
    enabled      boolean     NOT NULL,
    threshold    bigint      NOT NULL CHECK (threshold >= 0),
    pack_key     text        NOT NULL,
    monthly_cap  bigint      NOT NULL CHECK (monthly_cap > 0),
    currency     text        NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- One recharge per AUTO_RECHARGE alert event (the crossing), whatever woke the runner.
CREATE TABLE recharges (
    alert_event_id  uuid        PRIMARY KEY,
    org_id          uuid        NOT NULL REFERENCES organizations (id),
    month           date        NOT NULL,    -- the calendar month (UTC) the cap counts it in
    payment_id      uuid        REFERENCES payments (id),
    amount          bigint      NOT NULL CHECK (amount >= 0),
    status          text        NOT NULL CHECK (status IN ('started', 'succeeded', 'failed', 'over_cap', 'disabled')),
    detail          text        NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX recharges_month ON recharges (org_id, month);

-- The AUTO_RECHARGE events the runner has to act on: few (one per crossing), so a partial index.
CREATE INDEX alert_events_auto_recharge ON alert_events (committed_at) WHERE kind = 'auto_recharge' AND state = 'triggered';
CREATE FUNCTION alert_events_recharge_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('credit_ledger_recharge', NEW.org_id::text);
    RETURN NULL;
END;
$$;
CREATE TRIGGER alert_events_recharge_notify
    AFTER INSERT ON alert_events
    FOR EACH ROW WHEN (NEW.kind = 'auto_recharge' AND NEW.state = 'triggered')
    EXECUTE FUNCTION alert_events_recharge_notify();

ALTER TABLE alert_events DROP CONSTRAINT alert_events_kind_check;
ALTER TABLE alert_events ADD CONSTRAINT alert_events_kind_check
    CHECK (kind IN ('low_balance', 'high_spend', 'storage_over_quota', 'auto_recharge', 'payment_failed',
                    'auto_recharge_failed', 'renewal_notice', 'suspended'));

-- Invoices: one per (subscription, period), issued at the period's end; numbered per year.
CREATE TABLE invoices (
    id               uuid        PRIMARY KEY,
    org_id           uuid        NOT NULL REFERENCES organizations (id),
    subscription_id  uuid        NOT NULL REFERENCES subscriptions (id),
    period_start     timestamptz NOT NULL,
    period_end       timestamptz NOT NULL CHECK (period_end > period_start),
    number           text        NOT NULL UNIQUE,
    status           text        NOT NULL CHECK (status IN ('open', 'paid', 'uncollectible', 'void')),
    collection       text        NOT NULL CHECK (collection IN ('charge_automatically', 'send_invoice')),
    currency         text        NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    subtotal         bigint      NOT NULL,
    tax              bigint      NOT NULL DEFAULT 0,
    total            bigint      NOT NULL,
    prepaid          bigint      NOT NULL DEFAULT 0,  -- lines already paid (packs bought in the period)
    amount_due       bigint      NOT NULL CHECK (amount_due >= 0),
    issued_at        timestamptz NOT NULL,
    due_at           timestamptz NOT NULL,
    paid_at          timestamptz,
    payment_id       uuid        REFERENCES payments (id),  -- the charge that paid it
    created_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT invoices_one_per_period UNIQUE (subscription_id, period_start),
    CONSTRAINT invoices_totals CHECK (total = subtotal + tax AND amount_due = greatest(total - prepaid, 0))
);
CREATE INDEX invoices_org ON invoices (org_id, period_start DESC);
CREATE SEQUENCE invoice_numbers;

-- An invoice's lines, each traceable to what it came from (`source`: a billing charge's key, a
-- payment intent, a product's overage postings, the expired lots).
CREATE TABLE invoice_lines (
    invoice_id   uuid        NOT NULL REFERENCES invoices (id),
    line_no      integer     NOT NULL CHECK (line_no >= 1),
    kind         text        NOT NULL CHECK (kind IN ('plan', 'seats', 'kits', 'proration', 'pack', 'overage', 'expired', 'tax')),
    description  text        NOT NULL,
    quantity     numeric     NOT NULL,
    unit_price   numeric     NOT NULL,   -- money per unit, in the currency's major unit
    amount       bigint      NOT NULL,   -- minor units; 0 for a line shown and not charged (expired credits)
    credits      bigint,                 -- micro-credits the line is about (expired, overage), when it is
    prepaid      boolean     NOT NULL DEFAULT false,
    source       text        NOT NULL DEFAULT '',
    PRIMARY KEY (invoice_id, line_no)
);

-- Dunning per unpaid invoice: retries on days 1, 3 and 5 after the first failure; suspension on day 7.
CREATE TABLE dunning (
    invoice_id       uuid        PRIMARY KEY REFERENCES invoices (id),
    org_id           uuid        NOT NULL REFERENCES organizations (id),
    first_failed_at  timestamptz NOT NULL,
    attempts         integer     NOT NULL DEFAULT 1 CHECK (attempts >= 1),
    next_attempt_at  timestamptz,          -- NULL: no more retries
    suspended_at     timestamptz,
    resolved_at      timestamptz,
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX dunning_due ON dunning (next_attempt_at) WHERE resolved_at IS NULL;
