"""Marking records skipped: not pushed to Zoho until they change, with the reason on the record and a "skipped" row
in the sync log. The one place a skip is written: the sync rules' skips of a batch (Engine.skip_many) and a
person's (services.sync_skip, from the admin's "Skip selected" actions)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from django.db.models import Q
from django.utils import timezone

from zoho_sync.models import SyncLog, SyncStatus
from zoho_sync.models.base import FAILURE_STATUSES
from zoho_sync.sync import claims, logbook

if TYPE_CHECKING:
    from zoho_sync.entities import EntitySpec


def records_skip(spec: EntitySpec, reasons: dict[str, list], *, claimer: str = "", run_id: str = "",
                 now: datetime | None = None) -> set:
    """Mark the records skipped, each for its reason (`reasons`: reason -> records): the reason is their last error,
    they have no retry time; one UPDATE per reason, then one "skipped" sync-log row for each record skipped.

    With `claimer` (a batch skipping what the sync rules never push): only the records that worker holds, still at
    the version it read; the claim is released by the same UPDATE, the attempt count starts afresh and the log row
    counts this attempt. Without (a person's skip): only records that failed, wait or are blocked and that no worker
    holds now; their attempt count is kept. Returns the pks of the records skipped."""
    model = spec.model
    fields = {"sync_status": SyncStatus.SKIPPED, "next_retry_at": None, "last_error_kind": ""}
    if claimer:
        fields.update(claimed_by="", claimed_until=None, sync_attempts=0)
    free = Q() if claimer else claims.free_filter(now or timezone.now())
    for reason, group in reasons.items():
        if claimer:
            rows = Q()
            for obj in group:
                rows |= Q(pk=obj.pk, sync_version=obj.sync_version)
            rows &= Q(claimed_by=claimer)
        else:
            rows = Q(pk__in=[obj.pk for obj in group], sync_status__in=FAILURE_STATUSES) & free
        model.objects.filter(rows).update(last_sync_error=reason, **fields)
    asked = [obj.pk for group in reasons.values() for obj in group]
    skipped = set(model.objects.filter(pk__in=asked, sync_status=SyncStatus.SKIPPED).values_list("pk", flat=True))
    logbook.write_all(
        logbook.entry(spec, pk=obj.pk, label=spec.label(obj), zoho_id=obj.zoho_id or "", action=SyncLog.Action.NONE,
                      status=SyncLog.Status.SKIPPED, attempt=obj.sync_attempts + 1 if claimer else 1,
                      message=reason, run_id=run_id)
        for reason, group in reasons.items() for obj in group if obj.pk in skipped)
    return skipped
