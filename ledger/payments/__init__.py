"""Payments through Stripe: customers, payment methods, payment-gated packs, auto-recharge,
refunds, the webhook inbox and the reconciliation poll."""
