"""Claiming work so that two backfills and the triggers never push the same record at once.

A claim marks rows `syncing` with the claimer's name and a lease, in one short transaction: on PostgreSQL the
candidate rows are locked with SKIP LOCKED (workers pass each other instead of queueing), on SQLite one
conditional UPDATE does it (SQLite allows one writer at a time). A claim whose worker died is taken back at once
when that worker ran on this machine, and by anyone when its lease runs out.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from zoho_sync.client.budget import HOST, local_process_gone
from zoho_sync.models import SyncStatus
from zoho_sync.sync.specs import EntitySpec


def claimer_name(run_id: str) -> str:
    return f"{HOST}:{os.getpid()}:{run_id[:12]}"


def lease_seconds() -> float:
    return float(getattr(settings, "SYNC_CLAIM_LEASE_SECONDS", 900))


def due_filter(now: datetime) -> Q:
    """What a run should push now: pending and due, failed and due for retry, or claimed by a lapsed lease."""
    return (
        (Q(sync_status=SyncStatus.PENDING) & (Q(next_retry_at__isnull=True) | Q(next_retry_at__lte=now)))
        | Q(sync_status=SyncStatus.FAILED, next_retry_at__lte=now)
        | Q(sync_status=SyncStatus.SYNCING, claimed_until__lt=now)
    )


def claim(queryset: QuerySet, *, claimer: str, limit: int, now: datetime | None = None) -> list[int]:
    """Claim up to `limit` due rows of the queryset; return the primary keys this claimer now holds."""
    now = now or timezone.now()
    due = queryset.filter(due_filter(now)).order_by("pk")
    with transaction.atomic():
        if connection.vendor == "postgresql":
            pks = list(due.select_for_update(skip_locked=True, of=("self",)).values_list("pk", flat=True)[:limit])
        else:
            pks = list(due.values_list("pk", flat=True)[:limit])
        if not pks:
            return []
        queryset.model.objects.filter(due_filter(now), pk__in=pks).update(
            sync_status=SyncStatus.SYNCING, claimed_by=claimer, claimed_until=now + timedelta(seconds=lease_seconds())
        )
    return list(queryset.model.objects.filter(pk__in=pks, claimed_by=claimer).values_list("pk", flat=True))


def claimed_objects(spec: EntitySpec, pks: list[int], claimer: str) -> list:
    """The claimed rows, loaded with what their payloads need."""
    rows = spec.prepare(spec.model.objects.filter(pk__in=pks, claimed_by=claimer, sync_status=SyncStatus.SYNCING))
    return list(rows.order_by("pk"))


def release(spec: EntitySpec, *, claimer: str) -> int:
    """Give back whatever this claimer still holds (a stopped run): those rows are pending again."""
    return spec.model.objects.filter(claimed_by=claimer, sync_status=SyncStatus.SYNCING).update(
        sync_status=SyncStatus.PENDING, claimed_by="", claimed_until=None
    )


def reclaim_dead(spec: EntitySpec) -> int:
    """Free claims held by processes of this machine that no longer run (a killed backfill)."""
    freed = 0
    holders = (
        spec.model.objects.filter(sync_status=SyncStatus.SYNCING, claimed_by__startswith=f"{HOST}:")
        .values_list("claimed_by", flat=True).distinct()
    )
    for holder in list(holders):
        try:
            pid = int(holder.split(":")[1])
        except (IndexError, ValueError):
            continue
        if local_process_gone(pid):
            freed += spec.model.objects.filter(claimed_by=holder, sync_status=SyncStatus.SYNCING).update(
                sync_status=SyncStatus.PENDING, claimed_by="", claimed_until=None
            )
    return freed
