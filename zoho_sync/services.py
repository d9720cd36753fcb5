"""Sync services: what admin actions, commands and tasks call. No HTTP details and no output formatting here."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q, QuerySet
from django.utils import timezone

from zoho_sync.client.budget import Priority
from zoho_sync.models import ErrorKind, SyncStatus
from zoho_sync.sync import claims, specs
from zoho_sync.sync.backfill import BackfillRun, SyncReport
from zoho_sync.sync.engine import Engine, Outcome
from zoho_sync.zoho import get_zoho_client

logger = logging.getLogger(__name__)
PERMANENT_KINDS = (ErrorKind.VALIDATION, ErrorKind.INVALID_DATA, ErrorKind.AUTHENTICATION, ErrorKind.NOT_FOUND)


def sync_mark_pending(*, queryset: QuerySet) -> int:
    """Queue the records for their next push (fresh attempt count, no waiting); return how many."""
    return queryset.update(sync_status=SyncStatus.PENDING, next_retry_at=None, sync_attempts=0)


def sync_pending(*, entity: str = "all", limit: int | None = None, batch_size: int = 100,
                 since: datetime | None = None, on_progress=None, retry_window: float | None = None,
                 client=None) -> SyncReport:
    """Push every due record of the entities, in dependency order (a backfill); see BackfillRun."""
    window = float(getattr(settings, "SYNC_RETRY_WINDOW_SECONDS", 300)) if retry_window is None else retry_window
    run = BackfillRun(specs=specs.specs_for(entity), client=client or get_zoho_client(), batch_size=batch_size,
                      limit=limit, since=since, retry_window=window, on_progress=on_progress)
    return run.run()


def sync_retry_failed(*, entity: str = "all", include_validation: bool = False, on_progress=None,
                      client=None) -> SyncReport:
    """Push again the records whose last sync failed: now, not at their scheduled retry.

    Failures a retry cannot fix by itself (validation, invalid data) are left alone unless asked for.
    """
    now = timezone.now()
    for spec in specs.specs_for(entity):
        failed = spec.model.objects.filter(Q(sync_status=SyncStatus.FAILED)
                                           | Q(sync_status=SyncStatus.PENDING, last_error_kind=ErrorKind.DEPENDENCY))
        if not include_validation:
            failed = failed.exclude(last_error_kind__in=PERMANENT_KINDS)
        failed.update(next_retry_at=now)
    run = BackfillRun(specs=specs.specs_for(entity), client=client or get_zoho_client(), use_index=False,
                      retry_window=0, on_progress=on_progress)
    return run.run()


def sync_object(*, entity: str, pk: int, client=None, run_id: str = "") -> Outcome | None:
    """Push one record now, after the records it depends on; None when it is not due or another worker has it."""
    spec = specs.BY_NAME[entity]
    client = client or get_zoho_client()
    for each in specs.SPECS:
        claims.reclaim_dead(each)  # a killed worker's claims must not hold a trigger for the whole lease
    run = BackfillRun(specs=(spec,), client=client, use_index=False)
    engine = Engine(client=client, run_id=run_id or run.run_id, claimer=run.claimer)
    with client.priority(Priority.HIGH):
        return _push_with_dependencies(engine, spec, pk, seen=set())


def _push_with_dependencies(engine: Engine, spec, pk: int, *, seen: set) -> Outcome | None:
    if (spec.name, pk) in seen:
        return None
    seen.add((spec.name, pk))
    row = spec.model.objects.filter(pk=pk).values(*[f"{attr}_id" for attr, _ in spec.depends_on]).first()
    if row is None:
        return None
    for attribute, dependency in spec.depends_on:
        related_pk = row[f"{attribute}_id"]
        if related_pk is not None:
            dep_spec = specs.BY_NAME[dependency]
            if not dep_spec.model.objects.filter(pk=related_pk, zoho_id__isnull=False).exists():
                _push_with_dependencies(engine, dep_spec, related_pk, seen=seen)
    # A trigger pushes the record whatever its retry time: a person or a change asked for it now.
    spec.model.objects.filter(pk=pk, sync_status__in=(SyncStatus.PENDING, SyncStatus.FAILED)).update(
        next_retry_at=None)
    claimed = claims.claim(spec.model.objects.filter(pk=pk), claimer=engine.claimer, limit=1)
    if not claimed:
        return None
    try:
        obj = claims.claimed_objects(spec, claimed, engine.claimer)[0]
        return engine.push(spec, obj)
    finally:
        claims.release(spec, claimer=engine.claimer)


PUSH_NOW_LIMIT = 50


def sync_queryset(*, queryset: QuerySet) -> dict[str, int]:
    """Push the selected records now (dependencies first) when they are few; queue them when they are many.

    Returns how many ended in each state ("synced", "failed", "skipped", "queued", "busy").
    """
    spec = specs.for_model(queryset.model)
    pks = list(queryset.values_list("pk", flat=True))
    counts: dict[str, int] = {}
    sync_mark_pending(queryset=spec.model.objects.filter(pk__in=pks))
    if len(pks) > PUSH_NOW_LIMIT:
        for pk in pks:
            sync_enqueue(entity=spec.name, pk=pk)
        return {"queued": len(pks)}
    client = get_zoho_client()
    for pk in pks:
        outcome = sync_object(entity=spec.name, pk=pk, client=client)
        key = "busy" if outcome is None else {"success": "synced"}.get(outcome.status, outcome.status)
        counts[key] = counts.get(key, 0) + 1
    return counts


def debounce_seconds() -> float:
    return float(getattr(settings, "SYNC_DEBOUNCE_SECONDS", 5))


def sync_enqueue(*, entity: str, pk: int) -> bool:
    """Queue one debounced push of the record; False when one is already queued (a burst costs one push).

    The row's `push_queued_at` is the coalescing flag: set here by one conditional UPDATE, cleared by the task
    when it starts. A flag older than the queue's retry time is taken as lost and queued again.
    """
    from django_q.tasks import async_task

    spec = specs.BY_NAME[entity]
    now = timezone.now()
    stale = now - timedelta(seconds=float(settings.Q_CLUSTER.get("retry", 720)))
    queued = spec.model.objects.filter(pk=pk).filter(
        Q(push_queued_at__isnull=True) | Q(push_queued_at__lt=stale)).update(push_queued_at=now)
    if not queued:
        return False
    async_task("zoho_sync.tasks.push_record", entity, pk, task_name=f"zoho push {entity} {pk}",
               group="zoho push")
    return True
