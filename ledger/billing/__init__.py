"""Billing, pure: the catalog as data, billing calendars, proration. No I/O here."""
