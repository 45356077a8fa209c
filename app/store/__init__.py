"""Storage: the only layer that talks SQL. Rows leave it as `app.domain.records` objects."""
