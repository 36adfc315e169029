"""Periodic jobs (arq). Jobs observe and send ledger commands; they never write balances."""
