"""The django-q2 cluster's heartbeat: a schedule runs `cluster_heartbeat` every minute, and the queue check reads
when it last ran (the cluster's own statistics live in a per-process cache, invisible to other processes)."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from zoho_sync.models import SharedState
from zoho_sync.selectors import memoized

KEY = "monitoring:cluster-heartbeat"


def cluster_heartbeat() -> str:
    """The task the heartbeat schedule runs (keep the dotted path stable: schedules store it)."""
    now = timezone.now()
    SharedState.objects.update_or_create(key=KEY, defaults={"data": now.isoformat()})
    return f"cluster alive at {now.isoformat()}"


@memoized
def cluster_last_seen() -> datetime | None:
    raw = SharedState.objects.filter(key=KEY).values_list("data", flat=True).first()
    return parse_datetime(raw) if raw and raw != "{}" else None


def cluster_alive() -> bool:
    """Whether queued work runs now: a cluster beat within MONITORING_CLUSTER_SILENT_MINUTES, or django-q2 runs
    tasks in the saving process itself (Q_CLUSTER sync, for tests and one-process set-ups)."""
    from django.conf import settings

    from monitoring.conf import get_monitoring_settings

    if settings.Q_CLUSTER.get("sync"):
        return True
    seen = cluster_last_seen()
    silent = timedelta(minutes=get_monitoring_settings().cluster_silent_minutes)
    return seen is not None and timezone.now() - seen <= silent
