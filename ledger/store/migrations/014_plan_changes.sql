-- A subscription's plan changes, each with the proration it was charged and granted (the same pure
-- function computed its preview). An upgrade applies at `at`; any other change waits for the
-- billing period's end (`effective_at`, the subscription's `pending_plan_key` until then). The id
-- derives from (subscription, the request's idempotency key), so a retried request finds its row.
CREATE TABLE plan_changes (
    id               uuid        PRIMARY KEY,
    subscription_id  uuid        NOT NULL REFERENCES subscriptions (id),
    org_id           uuid        NOT NULL REFERENCES organizations (id),
    at               timestamptz NOT NULL,
    plan_before      text        NOT NULL,
    plan_after       text        NOT NULL,
    seats            integer     NOT NULL CHECK (seats >= 0),
    immediate        boolean     NOT NULL,
    effective_at     timestamptz NOT NULL CHECK (effective_at >= at),
    credits          bigint      NOT NULL,
    amount           numeric     NOT NULL,
    currency         text        NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX plan_changes_subscription ON plan_changes (subscription_id, at);

