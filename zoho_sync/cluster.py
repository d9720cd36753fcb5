"""Is a django-q2 cluster running? One answer, `cluster_state()`, read by the dashboard, the queue check, the
admin's messages, the batch runs and /metrics.

Every worker process of a cluster beats: django-q2 sends `post_spawn` in each worker it starts (and in each it
starts again), and a daemon thread there writes the time every MONITORING_CLUSTER_HEARTBEAT_SECONDS (20) to one
shared row. The thread dies with its process, so a cluster stopped, killed or crashed stops beating at once, and
once the row is MONITORING_CLUSTER_SILENT_SECONDS (75) old the cluster is reported as not running: within about a
minute. django-q2's own statistics (django_q.status.Stat) live in Django's cache, a per-process memory here, which
other processes cannot read. The "monitoring: cluster heartbeat" schedule writes the same row (proof that the
scheduler and a worker run tasks too)."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from zoho_sync.models import SharedState
from zoho_sync.selectors import memoized

logger = logging.getLogger("monitoring.heartbeat")  # its old name: settings route "monitoring" logs
KEY = "monitoring:cluster-heartbeat"
_beating = threading.Event()  # set once this process's beating thread runs


def beat() -> datetime:
    now = timezone.now()
    SharedState.objects.update_or_create(key=KEY, defaults={"data": now.isoformat()})
    return now


def cluster_heartbeat() -> str:
    """The task the heartbeat schedule runs (keep the dotted path stable: schedules store it)."""
    return f"cluster alive at {beat().isoformat()}"


def _beat_forever(interval: float) -> None:
    from django.db import connection

    while True:
        try:
            beat()
        except Exception:  # a database hiccup: the next beat tries again; silence long enough reports the cluster
            logger.warning("The cluster heartbeat could not be written", exc_info=True)
        finally:
            connection.close()  # this thread's own connection: none held open between beats
        time.sleep(interval)


def worker_spawned(sender=None, proc_name: str = "", **kwargs) -> None:
    """django-q2's `post_spawn` receiver (connected in MonitoringConfig.ready): start this worker's beat."""
    from monitoring.conf import get_monitoring_settings

    if _beating.is_set():
        return
    _beating.set()
    interval = get_monitoring_settings().cluster_heartbeat_seconds
    threading.Thread(target=_beat_forever, args=(interval,), name="cluster-heartbeat", daemon=True).start()


@memoized
def cluster_last_seen() -> datetime | None:
    raw = SharedState.objects.filter(key=KEY).values_list("data", flat=True).first()
    return parse_datetime(raw) if raw and raw != "{}" else None


@dataclass(frozen=True)
class ClusterState:
    running: bool
    last_seen: datetime | None
    inline: bool = False  # Q_CLUSTER sync: tasks run in the process that queues them
    silent_seconds: float = 75.0


@memoized
def cluster_state() -> ClusterState:
    """The one answer: a cluster beat within MONITORING_CLUSTER_SILENT_SECONDS, or django-q2 runs tasks in the
    saving process itself (Q_CLUSTER sync, for tests and one-process set-ups)."""
    from django.conf import settings

    from monitoring.conf import get_monitoring_settings

    silent = get_monitoring_settings().cluster_silent_seconds
    seen = cluster_last_seen()
    if settings.Q_CLUSTER.get("sync"):
        return ClusterState(True, seen, inline=True, silent_seconds=silent)
    running = seen is not None and timezone.now() - seen <= timedelta(seconds=silent)
    return ClusterState(running, seen, silent_seconds=silent)


def cluster_alive() -> bool:
    """Whether queued work runs now (see cluster_state)."""
    return cluster_state().running
