-- The invoice cron (`ledger.invoicing.issue`) looks each minute for ended billing periods without an
-- invoice: their 'charge' facts by period end, recent ones only (`invoice_look_back_days`).
CREATE INDEX period_facts_charges ON period_facts (period_end) WHERE reason = 'charge';
