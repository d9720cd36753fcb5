"""Acknowledged warnings: a person says "seen" to the failed django-q2 tasks, and the queue check stops warning
about them until a task fails again. Stored with who and when (a SharedState row, no table of its own)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from zoho_sync.models import SharedState

FAILED_TASKS = "monitoring:ack:failed-tasks"


@dataclass(frozen=True)
class Acknowledgement:
    by: str
    at: datetime  # when the person acknowledged
    up_to: datetime  # failures that stopped at or before this are acknowledged

    def sentence(self) -> str:
        return (f"failed tasks up to {timezone.localtime(self.up_to):%Y-%m-%d %H:%M:%S} acknowledged by {self.by} "
                f"at {timezone.localtime(self.at):%Y-%m-%d %H:%M}")


def failed_tasks_acknowledge(failures, *, by: str) -> Acknowledgement:
    """Acknowledge the given failed tasks (a django-q2 Failure queryset): every failure that stopped up to the
    latest of them. A later acknowledgement never moves the mark back."""
    now = timezone.now()
    latest = max((stopped for stopped in failures.values_list("stopped", flat=True) if stopped), default=now)
    current = failed_tasks_acknowledged()
    up_to = max(latest, current.up_to) if current else latest
    ack = Acknowledgement(by=by, at=now, up_to=up_to)
    SharedState.objects.update_or_create(key=FAILED_TASKS, defaults={"data": json.dumps(
        {"by": by, "at": now.isoformat(), "up_to": up_to.isoformat()})})
    return ack


def failed_tasks_acknowledged() -> Acknowledgement | None:
    raw = SharedState.objects.filter(key=FAILED_TASKS).values_list("data", flat=True).first()
    if not raw or raw == "{}":
        return None
    data = json.loads(raw)
    return Acknowledgement(by=data["by"], at=parse_datetime(data["at"]), up_to=parse_datetime(data["up_to"]))


def failed_tasks_open(*, hours: int = 24, now: datetime | None = None):
    """The django-q2 failed tasks of the last `hours` nobody has acknowledged yet, and the acknowledgement."""
    from django_q.models import Failure

    now = now or timezone.now()
    rows = Failure.objects.filter(stopped__gte=now - timedelta(hours=hours))
    ack = failed_tasks_acknowledged()
    return (rows.filter(stopped__gt=ack.up_to) if ack else rows), ack
