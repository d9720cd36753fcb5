"""Read-only queries the commands, the admin and (later) monitoring share. No writes here."""

from __future__ import annotations

from django.db.models import Count, Sum
from django.utils import timezone

from zoho_sync.models import ApiUsage, SyncLog
from zoho_sync.sync.specs import SPECS

STATUSES = ("pending", "syncing", "synced", "failed", "skipped")


def sync_status_counts() -> dict[str, dict[str, int]]:
    """Records per sync status, per entity (spec name), in dependency order."""
    counts = {}
    for spec in SPECS:
        rows = dict(spec.model.objects.values_list("sync_status").annotate(n=Count("pk")).order_by())
        counts[spec.name] = {status: rows.get(status, 0) for status in STATUSES}
    return counts


def sync_failures_recent(*, limit: int = 10) -> list[SyncLog]:
    """The latest failed attempts, newest first."""
    return list(SyncLog.objects.failures().order_by("-created_at", "-id")[:limit])


def api_calls_today() -> int:
    return ApiUsage.objects.filter(day=timezone.now().date()).aggregate(n=Sum("calls"))["n"] or 0
