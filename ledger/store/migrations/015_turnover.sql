-- Period turnover's schedule on each subscription: when it next has a fact due (a new one at once),
-- and the time up to which turnover has decided everything. A fact at or before that time that is
-- not recorded was not due when its time came (a trial was running, say) and never falls due, so a
-- later change to the subscription never reaches back before it.
ALTER TABLE subscriptions
    ADD COLUMN turnover_due_at         timestamptz NOT NULL DEFAULT '-infinity',
    ADD COLUMN turnover_decided_until  timestamptz;
-- The cron's query: the live subscriptions due soonest first.
CREATE INDEX subscriptions_turnover_due ON subscriptions (turnover_due_at) WHERE status <> 'canceled';
