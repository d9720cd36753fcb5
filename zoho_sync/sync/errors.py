"""Old address of zoho_sync.wire.errors, the sync error tree."""

from __future__ import annotations

from zoho_sync.wire.errors import (  # noqa: F401
    BadZohoValue,
    Busy,
    ClaimLost,
    DependencyBlocked,
    DependencyNotSynced,
    InvalidLocalData,
    RemoteConflict,
    SyncError,
)
