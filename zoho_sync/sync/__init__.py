"""The sync engine: the one push loop and its callers (backfill, retry, parallel workers, the dry-run plan), the
pull step, claims, link and the run bookkeeping. What differs by entity is in zoho_sync/entities; what crosses
the wire (sync errors, body helpers, Zoho's values) in zoho_sync/wire."""
