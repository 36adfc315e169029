-- Citus's rules (tests/test_citus_rules.py): every tenant table can be distributed by org_id,
-- co-located with organizations. So every primary key and unique key of a tenant table includes
-- org_id, every foreign key between tenant tables pairs org_id on both sides (the two rows are then
-- on one shard), and the three child tables that had no org_id get it (from their parent).
--
-- What was unique by a global id alone (an invoice number, a Stripe id, an idempotency key) is now
-- unique per organization in the key: the id stays unique where it is made (the invoice number
-- sequence, Stripe, uuids). A lookup by the id alone (a webhook carries Stripe's ids, not ours)
-- stays indexed here; on Citus it is a multi-shard query unless routed by the org id in Stripe's
-- metadata.
--
-- One transaction (the migration's): the columns are filled before they are NOT NULL, the foreign
-- keys are dropped before the keys they lean on, and put back once the new keys exist.

-- The child tables' org_id, from their parent.
ALTER TABLE subscription_plans ADD COLUMN org_id uuid;
UPDATE subscription_plans c SET org_id = s.org_id FROM subscriptions s WHERE s.id = c.subscription_id;
ALTER TABLE subscription_plans ALTER COLUMN org_id SET NOT NULL;

ALTER TABLE seat_changes ADD COLUMN org_id uuid;
UPDATE seat_changes c SET org_id = s.org_id FROM subscriptions s WHERE s.id = c.subscription_id;
ALTER TABLE seat_changes ALTER COLUMN org_id SET NOT NULL;

ALTER TABLE invoice_lines ADD COLUMN org_id uuid;
UPDATE invoice_lines c SET org_id = i.org_id FROM invoices i WHERE i.id = c.invoice_id;
ALTER TABLE invoice_lines ALTER COLUMN org_id SET NOT NULL;

-- The foreign keys by id alone.
ALTER TABLE subscription_plans DROP CONSTRAINT subscription_plans_subscription_id_fkey;
ALTER TABLE period_facts DROP CONSTRAINT period_facts_subscription_id_fkey;
ALTER TABLE seat_changes DROP CONSTRAINT seat_changes_subscription_id_fkey;
ALTER TABLE billing_charges DROP CONSTRAINT billing_charges_subscription_id_fkey;
ALTER TABLE plan_changes DROP CONSTRAINT plan_changes_subscription_id_fkey;
ALTER TABLE invoices DROP CONSTRAINT invoices_subscription_id_fkey;
ALTER TABLE invoices DROP CONSTRAINT invoices_payment_id_fkey;
ALTER TABLE invoice_lines DROP CONSTRAINT invoice_lines_invoice_id_fkey;
ALTER TABLE dunning DROP CONSTRAINT dunning_invoice_id_fkey;
ALTER TABLE refunds DROP CONSTRAINT refunds_payment_id_fkey;
ALTER TABLE recharges DROP CONSTRAINT recharges_payment_id_fkey;
ALTER TABLE invoice_overpayments DROP CONSTRAINT invoice_overpayments_payment_id_fkey;
ALTER TABLE invoice_overpayments DROP CONSTRAINT invoice_overpayments_invoice_id_fkey;

-- The keys, with org_id last: Citus needs it in every key, not first (a shard is chosen by the hash
-- of org_id, whatever the key's order), and so every lookup by the id alone (a Stripe id from a
-- webhook, an invitation's token, a row's uuid) still finds its row through the key's leading
-- column, without another index.
ALTER TABLE subscriptions DROP CONSTRAINT subscriptions_pkey, ADD PRIMARY KEY (id, org_id);
ALTER TABLE subscription_plans DROP CONSTRAINT subscription_plans_pkey,
    ADD PRIMARY KEY (subscription_id, effective_at, org_id);
ALTER TABLE period_facts DROP CONSTRAINT period_facts_pkey,
    ADD PRIMARY KEY (subscription_id, period_start, reason, org_id);
ALTER TABLE seat_changes DROP CONSTRAINT seat_changes_pkey, ADD PRIMARY KEY (id, org_id);
ALTER TABLE plan_changes DROP CONSTRAINT plan_changes_pkey, ADD PRIMARY KEY (id, org_id);
ALTER TABLE billing_charges DROP CONSTRAINT billing_charges_pkey, ADD PRIMARY KEY (id, org_id),
    DROP CONSTRAINT billing_charges_idempotency_key_key,
    ADD CONSTRAINT billing_charges_idempotency_key UNIQUE (idempotency_key, org_id);

ALTER TABLE invoices DROP CONSTRAINT invoices_pkey, ADD PRIMARY KEY (id, org_id),
    DROP CONSTRAINT invoices_number_key, ADD CONSTRAINT invoices_number UNIQUE (number, org_id),
    DROP CONSTRAINT invoices_one_per_period,
    ADD CONSTRAINT invoices_one_per_period UNIQUE (subscription_id, period_start, org_id);
ALTER TABLE invoice_lines DROP CONSTRAINT invoice_lines_pkey, ADD PRIMARY KEY (invoice_id, line_no, org_id);
ALTER TABLE dunning DROP CONSTRAINT dunning_pkey, ADD PRIMARY KEY (invoice_id, org_id);

-- A webhook or the reconciliation poll finds a payment by Stripe's intent id alone (the key's
-- leading column).
ALTER TABLE payments DROP CONSTRAINT payments_pkey, ADD PRIMARY KEY (id, org_id),
    DROP CONSTRAINT payments_payment_intent_id_key,
    ADD CONSTRAINT payments_payment_intent UNIQUE (payment_intent_id, org_id);
DROP INDEX payments_one_live_per_invoice;
CREATE UNIQUE INDEX payments_one_live_per_invoice ON payments (invoice_id, org_id)
    WHERE invoice_id IS NOT NULL AND NOT invoice_surplus
      AND status IN ('creating', 'processing', 'requires_action', 'succeeded');
-- The surplus trigger (019) reads the invoice's other payments on the row's own shard.
CREATE OR REPLACE FUNCTION payments_mark_invoice_surplus() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.invoice_id IS NOT NULL AND NOT NEW.invoice_surplus
       AND OLD.status IN ('failed', 'canceled')
       AND NEW.status IN ('creating', 'processing', 'requires_action', 'succeeded')
       AND EXISTS (SELECT 1 FROM payments p
                   WHERE p.invoice_id = NEW.invoice_id AND p.org_id = NEW.org_id AND p.id <> NEW.id
                     AND NOT p.invoice_surplus
                     AND p.status IN ('creating', 'processing', 'requires_action', 'succeeded')) THEN
        NEW.invoice_surplus := true;
    END IF;
    RETURN NEW;
END
$$;

-- A refund's webhook finds it by Stripe's refund id alone.
ALTER TABLE refunds DROP CONSTRAINT refunds_pkey, ADD PRIMARY KEY (id, org_id),
    DROP CONSTRAINT refunds_stripe_refund_id_key,
    ADD CONSTRAINT refunds_stripe_refund UNIQUE (stripe_refund_id, org_id);
ALTER TABLE recharges DROP CONSTRAINT recharges_pkey, ADD PRIMARY KEY (alert_event_id, org_id);
ALTER TABLE invoice_overpayments DROP CONSTRAINT invoice_overpayments_pkey, ADD PRIMARY KEY (payment_id, org_id);

-- One customer per organization (the primary key, org_id); a webhook finds the organization by
-- Stripe's customer id alone.
ALTER TABLE stripe_customers DROP CONSTRAINT stripe_customers_customer_id_key,
    ADD CONSTRAINT stripe_customers_customer UNIQUE (customer_id, org_id);

-- An invitation is accepted by its token before the organization is known: found by token_hash
-- alone (the unique key's leading column, so no other index), unique per organization. Two
-- organizations' invitations never share a hash: the token is 256 bits of HMAC output, so a
-- collision is out of reach.
ALTER TABLE invitations DROP CONSTRAINT invitations_pkey, ADD PRIMARY KEY (id, org_id),
    DROP CONSTRAINT invitations_token_hash_key,
    ADD CONSTRAINT invitations_token UNIQUE (token_hash, org_id);

-- The foreign keys again, org_id paired with org_id.
ALTER TABLE subscription_plans ADD CONSTRAINT subscription_plans_subscription_fkey
    FOREIGN KEY (subscription_id, org_id) REFERENCES subscriptions (id, org_id);
ALTER TABLE period_facts ADD CONSTRAINT period_facts_subscription_fkey
    FOREIGN KEY (subscription_id, org_id) REFERENCES subscriptions (id, org_id);
ALTER TABLE seat_changes ADD CONSTRAINT seat_changes_subscription_fkey
    FOREIGN KEY (subscription_id, org_id) REFERENCES subscriptions (id, org_id);
ALTER TABLE billing_charges ADD CONSTRAINT billing_charges_subscription_fkey
    FOREIGN KEY (subscription_id, org_id) REFERENCES subscriptions (id, org_id);
ALTER TABLE plan_changes ADD CONSTRAINT plan_changes_subscription_fkey
    FOREIGN KEY (subscription_id, org_id) REFERENCES subscriptions (id, org_id);
ALTER TABLE invoices ADD CONSTRAINT invoices_subscription_fkey
    FOREIGN KEY (subscription_id, org_id) REFERENCES subscriptions (id, org_id);
ALTER TABLE invoices ADD CONSTRAINT invoices_payment_fkey
    FOREIGN KEY (payment_id, org_id) REFERENCES payments (id, org_id);
ALTER TABLE invoice_lines ADD CONSTRAINT invoice_lines_invoice_fkey
    FOREIGN KEY (invoice_id, org_id) REFERENCES invoices (id, org_id);
ALTER TABLE dunning ADD CONSTRAINT dunning_invoice_fkey
    FOREIGN KEY (invoice_id, org_id) REFERENCES invoices (id, org_id);
ALTER TABLE refunds ADD CONSTRAINT refunds_payment_fkey
    FOREIGN KEY (payment_id, org_id) REFERENCES payments (id, org_id);
ALTER TABLE recharges ADD CONSTRAINT recharges_payment_fkey
    FOREIGN KEY (payment_id, org_id) REFERENCES payments (id, org_id);
ALTER TABLE invoice_overpayments ADD CONSTRAINT invoice_overpayments_payment_fkey
    FOREIGN KEY (payment_id, org_id) REFERENCES payments (id, org_id);
ALTER TABLE invoice_overpayments ADD CONSTRAINT invoice_overpayments_invoice_fkey
    FOREIGN KEY (invoice_id, org_id) REFERENCES invoices (id, org_id);
