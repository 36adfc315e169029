-- One invoice, one charge: at most one payment of an invoice that is live or succeeded, whatever
-- asks (payInvoice with any key, an automatic attempt, dunning). A second insert is refused
-- (`ledger.invoicing.pay`/`collect` then answer or resume the live one).
--
-- A payment recorded failed or canceled that Stripe later reports as live or succeeded (a webhook
-- of an old attempt, a 'creating' row given up and then seen) is money already taken: refusing its
-- update would lose the fact. Such a row is marked `invoice_surplus` instead and stays outside the
-- guard; `ledger.invoicing.settlement.invoice_paid` records it in `invoice_overpayments`.
ALTER TABLE payments ADD COLUMN invoice_surplus boolean NOT NULL DEFAULT false;

CREATE FUNCTION payments_mark_invoice_surplus() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.invoice_id IS NOT NULL AND NOT NEW.invoice_surplus
       AND OLD.status IN ('failed', 'canceled')
       AND NEW.status IN ('creating', 'processing', 'requires_action', 'succeeded')
       AND EXISTS (SELECT 1 FROM payments p
                   WHERE p.invoice_id = NEW.invoice_id AND p.id <> NEW.id AND NOT p.invoice_surplus
                     AND p.status IN ('creating', 'processing', 'requires_action', 'succeeded')) THEN
        NEW.invoice_surplus := true;
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER payments_invoice_surplus BEFORE UPDATE OF status ON payments
    FOR EACH ROW EXECUTE FUNCTION payments_mark_invoice_surplus();

CREATE UNIQUE INDEX payments_one_live_per_invoice ON payments (invoice_id)
    WHERE invoice_id IS NOT NULL AND NOT invoice_surplus
      AND status IN ('creating', 'processing', 'requires_action', 'succeeded');

-- What an invoice was paid more than once by: for an operator to refund (logged at ERROR too).
CREATE TABLE invoice_overpayments (
    payment_id   uuid        PRIMARY KEY REFERENCES payments (id),
    invoice_id   uuid        NOT NULL REFERENCES invoices (id),
    org_id       uuid        NOT NULL REFERENCES organizations (id),
    amount       bigint      NOT NULL CHECK (amount > 0),
    currency     text        NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    detected_at  timestamptz NOT NULL
);

-- The invoice cron's scan of open card invoices no payment was started for (`collect._UNCOLLECTED`).
CREATE INDEX invoices_open_card ON invoices (issued_at)
    WHERE status = 'open' AND collection = 'charge_automatically';
-- An invoice's payments (the guard above covers only live ones).
CREATE INDEX payments_invoice ON payments (invoice_id) WHERE invoice_id IS NOT NULL;
-- The invoice cron's candidates: charge facts of periods not yet invoiced (`issue._DUE`), marked as
-- their invoice is issued, so each run reads only the few waiting ones (017's index read them all).
ALTER TABLE period_facts ADD COLUMN invoiced boolean NOT NULL DEFAULT false;
UPDATE period_facts f SET invoiced = true
WHERE f.reason = 'charge'
  AND EXISTS (SELECT 1 FROM invoices i WHERE i.subscription_id = f.subscription_id AND i.period_start = f.period_start);
DROP INDEX period_facts_charges;
CREATE INDEX period_facts_to_invoice ON period_facts (period_end) WHERE reason = 'charge' AND NOT invoiced;
-- Whether another unpaid invoice keeps an organization suspended (`dunning_store.still_suspending`).
CREATE INDEX dunning_suspending ON dunning (org_id) WHERE suspended_at IS NOT NULL AND resolved_at IS NULL;
-- A Net-N invoice past its due date raises PAYMENT_FAILED once (`ledger.invoicing.overdue`).
ALTER TABLE invoices ADD COLUMN overdue_alerted_at timestamptz;
CREATE INDEX invoices_overdue ON invoices (due_at)
    WHERE status = 'open' AND collection = 'send_invoice' AND overdue_alerted_at IS NULL;
