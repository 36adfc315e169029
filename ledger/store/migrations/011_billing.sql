-- Billing facts: the catalog's versions, subscriptions, their periods' facts, seat changes and the
-- charges they owe. Written by the API and the jobs in ordinary transactions, each fact guarded by a
-- unique key; what they do to credits reaches the org's actor as a command whose idempotency key
-- derives from the fact (`ledger.billing.keys`).

-- The catalog's rates, versioned: usage is priced by the version in force at the event's time. A
-- version with dimensions (e.g. {"model": "gpt-4o"}) prices only events carrying those dimensions,
-- and wins over a version with fewer.
CREATE TABLE catalog_rates (
    product                 text        NOT NULL CHECK (length(product) BETWEEN 1 AND 100),
    dimensions              jsonb       NOT NULL DEFAULT '{}'::jsonb,
    effective_at            timestamptz NOT NULL,
    credits_per_unit        numeric     NOT NULL CHECK (credits_per_unit >= 0),
    overage_price_per_unit  numeric     CHECK (overage_price_per_unit >= 0),
    cost_per_unit           numeric     CHECK (cost_per_unit >= 0),
    currency                text        NOT NULL DEFAULT 'USD',
    PRIMARY KEY (product, dimensions, effective_at)
);

-- Today's products keep pricing from the start of time.
INSERT INTO catalog_rates (product, effective_at, credits_per_unit, overage_price_per_unit, cost_per_unit, currency)
SELECT key, '2000-01-01T00:00:00Z', credits_per_unit, overage_price_per_unit, cost_per_unit, currency FROM products;

CREATE FUNCTION catalog_rates_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('credit_ledger_catalog', coalesce(NEW.product, OLD.product));
    RETURN NULL;
END;
$$;
CREATE TRIGGER catalog_rates_notify
    AFTER INSERT OR UPDATE OR DELETE ON catalog_rates
    FOR EACH ROW EXECUTE FUNCTION catalog_rates_notify();

-- Every other catalog entry (product, plan, pack, the catalog's own settings) as versions: a
-- version, once loaded, never changes (a load with other content for it is refused), so history
-- stays as it was priced.
CREATE TABLE catalog_entries (
    kind          text        NOT NULL CHECK (kind IN ('product', 'plan', 'pack', 'settings')),
    key           text        NOT NULL CHECK (length(key) BETWEEN 1 AND 100),
    effective_at  timestamptz NOT NULL,
    body          jsonb       NOT NULL,
    loaded_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, key, effective_at)
);

-- One live subscription per organization. Its periods are computed from `anchor` in `timezone`
-- (`ledger.billing.calendar`), never from a previous period's end.
CREATE TABLE subscriptions (
    id                    uuid        PRIMARY KEY,
    org_id                uuid        NOT NULL REFERENCES organizations (id),
    plan_key              text        NOT NULL,
    interval              text        NOT NULL CHECK (interval IN ('monthly', 'annual')),
    seats                 integer     NOT NULL CHECK (seats >= 0),
    anchor                timestamptz NOT NULL,
    timezone              text        NOT NULL,
    status                text        NOT NULL CHECK (status IN ('trialing', 'active', 'canceled', 'archived')),
    trial_ends_at         timestamptz,
    cancel_at_period_end  boolean     NOT NULL DEFAULT false,
    pending_plan_key      text,        -- a downgrade waiting for the period's end
    ends_at               timestamptz, -- canceled: the end of its last period
    media_purge_at        timestamptz, -- archived: when its media is purged
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX subscriptions_one_live ON subscriptions (org_id) WHERE status <> 'canceled';
CREATE INDEX subscriptions_org ON subscriptions (org_id, created_at);

-- The plan in force from each time on: a plan change adds a row, so every period knows its plan.
CREATE TABLE subscription_plans (
    subscription_id  uuid        NOT NULL REFERENCES subscriptions (id),
    effective_at     timestamptz NOT NULL,
    plan_key         text        NOT NULL,
    seats            integer     NOT NULL CHECK (seats >= 0),
    PRIMARY KEY (subscription_id, effective_at)
);

-- Exactly once per (subscription, period, reason): 'base' (the period's grant), 'close' (its
-- rollover or reset), 'charge' (its price), 'trial_end', 'plan' (a pending plan change applied),
-- 'seats:<change id>', 'upgrade:<change id>'. `idempotency_key` is the command's that carried it.
CREATE TABLE period_facts (
    subscription_id  uuid        NOT NULL REFERENCES subscriptions (id),
    period_start     timestamptz NOT NULL,
    reason           text        NOT NULL CHECK (length(reason) BETWEEN 1 AND 100),
    org_id           uuid        NOT NULL REFERENCES organizations (id),
    period_end       timestamptz NOT NULL CHECK (period_end > period_start),
    idempotency_key  text        NOT NULL,
    transaction_id   uuid,
    credits          bigint,
    recorded_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (subscription_id, period_start, reason)
);

-- Seat quantity changes, each with the proration it was charged and granted (the same pure
-- function computed the preview).
CREATE TABLE seat_changes (
    id               uuid        PRIMARY KEY,
    subscription_id  uuid        NOT NULL REFERENCES subscriptions (id),
    at               timestamptz NOT NULL,
    seats_before     integer     NOT NULL CHECK (seats_before >= 0),
    seats_after      integer     NOT NULL CHECK (seats_after >= 0),
    credits          bigint      NOT NULL,
    amount           numeric     NOT NULL,
    currency         text        NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now()
);

-- What an organization owes, line by line, before it is invoiced (the invoices issue reads these).
CREATE TABLE billing_charges (
    id               uuid        PRIMARY KEY,
    org_id           uuid        NOT NULL REFERENCES organizations (id),
    subscription_id  uuid        REFERENCES subscriptions (id),
    idempotency_key  text        NOT NULL UNIQUE,
    kind             text        NOT NULL CHECK (kind IN ('plan', 'seats', 'kits', 'proration', 'pack')),
    description      text        NOT NULL,
    period_start     timestamptz,
    period_end       timestamptz,
    quantity         numeric     NOT NULL,
    unit_price       numeric     NOT NULL,
    amount           numeric     NOT NULL,
    currency         text        NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX billing_charges_org ON billing_charges (org_id, created_at);

-- Billing sets the access a debit is judged by (the plan's products, archive, trial ended).
ALTER TABLE ledger_settings DROP CONSTRAINT ledger_settings_kind_check;
ALTER TABLE ledger_settings ADD CONSTRAINT ledger_settings_kind_check
    CHECK (kind IN ('policy', 'budget', 'member', 'rate', 'priority', 'alert', 'access'));

-- Storage over the plan's quota is an alert event like any other.
ALTER TABLE alert_events DROP CONSTRAINT alert_events_kind_check;
ALTER TABLE alert_events ADD CONSTRAINT alert_events_kind_check
    CHECK (kind IN ('low_balance', 'high_spend', 'storage_over_quota'));
