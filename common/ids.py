"""Bounds of the portal's ids."""

# The largest primary key the database holds (a signed 64-bit integer in SQLite and
# PostgreSQL); a larger one cannot be bound as a query parameter, so it names no row.
MAX_ID = 2**63 - 1
