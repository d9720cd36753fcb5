"""Old address of zoho_sync.wire.remote (and, forwarded, of the per-entity names that moved to zoho_sync/entities)."""

from __future__ import annotations

from zoho_sync.sync.moved import forward_to_entities
from zoho_sync.wire.remote import (  # noqa: F401
    SyncContext,
    match_one,
)

__getattr__ = forward_to_entities(__name__)
