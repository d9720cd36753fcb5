"""Sync services: the operations admin actions, commands and tasks call. No HTTP details here."""

from __future__ import annotations

from django.db.models import QuerySet

from zoho_sync.models import SyncStatus


def sync_mark_pending(*, queryset: QuerySet) -> int:
    """Queue the records for their next push (fresh attempt count, no waiting); return how many."""
    return queryset.update(sync_status=SyncStatus.PENDING, next_retry_at=None, sync_attempts=0)
