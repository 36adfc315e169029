"""Invoices in PostgreSQL: issued at each period's end, charged or sent Net-N, dunned, rendered as
PDF, and the revenue they recognize."""
