-- Finding lots whose expiry is due without scanning the spent ones.
CREATE INDEX credit_lots_expiring ON credit_lots (expires_at) WHERE remaining > 0 AND expires_at IS NOT NULL;
