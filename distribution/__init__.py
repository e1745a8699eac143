"""Distribution program, binding, commissions, ledger and withdrawals (built on `shop`)."""
