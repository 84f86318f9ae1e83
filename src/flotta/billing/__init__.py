"""Usage-based billing: categories, the price book, the spend estimator (and, later, the ledger)."""
