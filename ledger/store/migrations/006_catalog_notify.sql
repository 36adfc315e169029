-- Ledger workers keep the catalog's rates in memory; a change to a product tells them to read it again.
CREATE FUNCTION products_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('credit_ledger_catalog', NEW.key);
    RETURN NULL;
END;
$$;
CREATE TRIGGER products_notify
    AFTER INSERT OR UPDATE ON products
    FOR EACH ROW EXECUTE FUNCTION products_notify();
