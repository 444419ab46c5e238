"""Model record store on SQLite: one table of model configs keyed by content-derived key."""
