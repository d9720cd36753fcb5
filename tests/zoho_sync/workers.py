"""Functions run in separate processes by the shared-state tests (spawned: a fresh interpreter each)."""

from __future__ import annotations

import os


def fetch_customers(env: dict, barrier, results) -> None:
    """Set Django up against the test database, wait for the others, then make one call through the factory."""
    os.environ.update(env)
    import django

    django.setup()
    from zoho_sync.zoho import get_zoho_client

    client = get_zoho_client()
    barrier.wait()
    try:
        body = client.get("/customers")
        results.put(("ok", client.tokens.mints, body["code"]))
    except Exception as exc:
        results.put(("error", 0, repr(exc)))
