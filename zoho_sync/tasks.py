"""django-q2 task functions (dotted paths are stored in the queue and in schedules: keep the names stable)."""

from __future__ import annotations

import time
from datetime import timedelta

from django.utils import timezone

from zoho_sync import services
from zoho_sync.sync import specs


def push_record(entity: str, pk: int) -> str:
    """Push one record after its debounce window; edits made inside the window ride along."""
    model = specs.BY_NAME[entity].model
    queued = model.objects.filter(pk=pk).values_list("push_queued_at", flat=True).first()
    if queued:
        wait = (queued - timezone.now()).total_seconds() + services.debounce_seconds()
        time.sleep(max(0.0, min(wait, services.debounce_seconds())))
    model.objects.filter(pk=pk).update(push_queued_at=None)
    outcome = services.sync_object(entity=entity, pk=pk)
    return f"{entity} {pk}: {outcome.action} {outcome.status}" if outcome else f"{entity} {pk}: nothing due"


CONTINUE_SCHEDULE = "zoho: continue backfill after the daily quota"


def backfill(entity: str = "all") -> str:
    """Push everything due. Stopped by the daily quota, it schedules itself for just after the reset."""
    from django_q.models import Schedule

    report = services.sync_pending(entity=entity)
    if report.resume_at:
        Schedule.objects.update_or_create(name=CONTINUE_SCHEDULE, defaults={
            "func": "zoho_sync.tasks.backfill", "args": repr(entity), "schedule_type": Schedule.ONCE,
            "next_run": report.resume_at + timedelta(minutes=1), "repeats": 1})
        return report.stopped
    return f"{report.done} records, {report.failed} failed, {report.calls} calls"
