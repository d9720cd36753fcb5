"""Claiming work: at most one worker pushes a record at a time, whatever else happens to the record.

A claim is the holder's name and a lease (`claimed_by`, `claimed_until`), taken in one short transaction: on
PostgreSQL the candidate rows are locked with SKIP LOCKED (workers pass each other instead of queueing), on SQLite
one conditional UPDATE does it (SQLite allows one writer at a time). Only the holder ends a claim, or the lease
running out; a local save never does (it bumps the record's version instead, which the holder compares when it
finishes). A claim whose worker died is taken back at once when that worker ran on this machine.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import Case, F, Q, QuerySet, Value, When
from django.utils import timezone

from zoho_sync.client.budget import HOST, local_process_gone
from zoho_sync.conf import get_sync_settings
from zoho_sync.entities import EntitySpec
from zoho_sync.models import SyncStatus


def claimer_name(run_id: str) -> str:
    return f"{HOST}:{os.getpid()}:{run_id[:12]}"


def free_filter(now: datetime) -> Q:
    """Nobody holds the record: never claimed, released, or the holder's lease ran out."""
    return Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)


def due_filter(now: datetime) -> Q:
    """What a run should push now: pending (or left syncing by a lapsed claim), a failure or a wait whose retry
    time has come; and nobody holds it. Blocked, skipped, synced and failures needing a person are not due."""
    retry_due = Q(next_retry_at__isnull=True) | Q(next_retry_at__lte=now)
    due = (Q(sync_status__in=(SyncStatus.PENDING, SyncStatus.SYNCING)) & retry_due) | Q(
        sync_status__in=(SyncStatus.FAILED, SyncStatus.WAITING), next_retry_at__lte=now)
    return due & free_filter(now)


def trigger_cutoff(now: datetime, debounce: float | None = None) -> datetime:
    """A `push_queued_at` older than this is taken as a lost task: the queue's retry time plus the debounce."""
    from django.conf import settings

    wait = get_sync_settings().debounce_seconds if debounce is None else debounce
    return now - timedelta(seconds=float(settings.Q_CLUSTER.get("retry", 720)) + wait)


# A triggered push overdue by more than this (a busy or stopped cluster) is pushed by whichever run gets to it.
TRIGGER_GRACE_SECONDS = 60.0


def trigger_queued(now: datetime) -> Q:
    """The record's triggered push is queued and due soon, or due within the grace: a batch run leaves it to that
    push (see BackfillRun)."""
    since = now - timedelta(seconds=get_sync_settings().debounce_seconds + TRIGGER_GRACE_SECONDS)
    return Q(push_queued_at__isnull=False, push_queued_at__gte=since)


def left_to_triggers(now: datetime) -> Q | None:
    """What a batch run leaves to the records' queued triggered pushes now (they go ahead of it in the rate
    budget; claimed by the batch they would wait for their turn in it), or None when no cluster beats to run them.
    The backfill and its dry run both ask here."""
    from zoho_sync.cluster import cluster_alive

    return trigger_queued(now) if cluster_alive() else None


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
            sync_status=SyncStatus.SYNCING, claimed_by=claimer,
            claimed_until=now + timedelta(seconds=get_sync_settings().claim_lease_seconds),
        )
    return list(queryset.model.objects.filter(pk__in=pks, claimed_by=claimer).values_list("pk", flat=True))


def claimed_objects(spec: EntitySpec, pks: list[int], claimer: str) -> list:
    """The claimed rows, loaded with what their payloads need (a row saved since it was claimed is still ours)."""
    rows = spec.prepare(spec.model.objects.filter(pk__in=pks, claimed_by=claimer))
    return list(rows.order_by("pk"))


def _unclaim(rows: QuerySet) -> int:
    """End the claims on these rows: a row still marked syncing goes back to pending; any other status (a save
    made it pending, or the holder's outcome) stays."""
    return rows.update(
        sync_status=Case(When(sync_status=SyncStatus.SYNCING, then=Value(SyncStatus.PENDING)),
                         default=F("sync_status")),
        claimed_by="", claimed_until=None,
    )


def release(spec: EntitySpec, *, claimer: str) -> int:
    """Give back whatever this claimer still holds (a stopped run): those rows are due again."""
    return _unclaim(spec.model.objects.filter(claimed_by=claimer))


def reclaim_dead(spec: EntitySpec) -> int:
    """Free claims held by processes of this machine that no longer run (a killed backfill)."""
    freed = 0
    holders = (
        spec.model.objects.filter(claimed_by__startswith=f"{HOST}:", claimed_until__isnull=False)
        .values_list("claimed_by", flat=True).distinct()
    )
    for holder in list(holders):
        try:
            pid = int(holder.split(":")[1])
        except (IndexError, ValueError):
            continue
        if local_process_gone(pid):
            freed += _unclaim(spec.model.objects.filter(claimed_by=holder))
    return freed
