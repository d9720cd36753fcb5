"""Queue a django-q2 task to run later without any worker sleeping it out.

On the ORM broker (this project's: Q_CLUSTER["orm"]) a queued row is taken by a worker only once its `lock` lies
in the past (django_q.brokers.orm.ORM.dequeue takes rows with lock < now), so a task due later is simply written
with lock = its due time, through django-q2's own `async_task` and a broker subclass. On Redis (`Q_BROKER=redis`)
the broker is zoho_sync.brokers.DelayingRedis, which holds the task in a sorted set until its time. With any other
broker the task becomes a one-off django-q2 Schedule, which the cluster's scheduler starts within about 30 s of
its time.

A broker that does not take the task (Redis down, the ORM broker's write failing) raises QueueUnavailableError, never
the broker's own error: the callers keep their records due (a save's record stays pending, an event stays in the
inbox) and the sweeps queue them again once the broker is back. The outage is logged once when it starts, then
at most every QUEUE_DOWN_REMINDER_SECONDS, and once more when a task is taken again; not once per save.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
import time
from datetime import datetime, timedelta

from django.db import DatabaseError, transaction
from django.utils import timezone
from django_q.brokers.orm import ORM
from django_q.conf import Conf
from django_q.models import Schedule
from django_q.tasks import async_task

from zoho_sync.redaction import redact_text

logger = logging.getLogger(__name__)
QUEUE_DOWN_REMINDER_SECONDS = 300.0
try:
    from redis.exceptions import RedisError
except ImportError:  # the ORM broker needs no redis package
    RedisError = OSError

BROKER_ERRORS = (RedisError, DatabaseError, OSError)


class QueueUnavailableError(Exception):
    """The task queue did not take a task (its broker is down or refused the write). Nothing was queued; the
    caller's record stays due for the next save, sweep or backfill."""


def broker_name() -> str:
    if Conf.ORM and not Conf.BROKER_CLASS:
        return "the ORM broker (the database)"
    return "Redis" if "redis" in (Conf.BROKER_CLASS or "").lower() or Conf.REDIS else str(Conf.BROKER_CLASS)


class _Outage:
    """One process's view of the broker's health: a burst of failures is logged once, not per save."""

    def __init__(self):
        self._lock = threading.Lock()
        self.since: float | None = None  # time.time() of the first failure of the current outage
        self.failures = 0
        self._logged = 0.0

    def failed(self, task_name: str, error: BaseException) -> QueueUnavailableError:
        cause = redact_text(f"{type(error).__name__}: {error}")[:500].rstrip(". ")
        with self._lock:
            now = time.time()
            first = self.since is None
            if first:
                self.since, self.failures = now, 0
            self.failures += 1
            remind = not first and now - self._logged >= QUEUE_DOWN_REMINDER_SECONDS
            if first or remind:
                self._logged = now
            failures, since = self.failures, self.since
        message = (f"The task queue ({broker_name()}) did not take {task_name!r}: {cause}. Nothing was queued; "
                   "the record stays due: the next save, the 15-minute \"zoho: push pending\" schedule or \"Push "
                   "to Zoho now\" queues or pushes it once the queue is back (events: the inbox sweep).")
        if first:
            logger.error("%s Further failures are counted, not logged one by one.", message)
        elif remind:
            logger.error("The task queue (%s) is still down: %d tasks not queued since %s. Last: %s", broker_name(),
                         failures, time.strftime("%H:%M:%S", time.localtime(since)), message)
        return QueueUnavailableError(message)

    def took(self) -> None:
        if self.since is None:  # the usual case: no lock, no log
            return
        with self._lock:
            since, failures = self.since, self.failures
            self.since, self.failures = None, 0
        if since is not None:
            logger.warning("The task queue (%s) takes tasks again: %d were not queued while it was down (%.0f s); "
                           "their records stay due for the next save, the sweep or a backfill.", broker_name(),
                           failures, time.time() - since)


outage = _Outage()


class _DueLaterORM(ORM):
    """The ORM broker, writing the queued row with its lock at the due time: invisible to workers until then."""

    def __init__(self, due: datetime, list_key: str | None = None):
        super().__init__(list_key=list_key)
        self.due = due

    def enqueue(self, task):
        return self.get_connection().create(key=self.list_key, payload=task, lock=self.due).pk


class _DueLaterRedis:
    """A DelayingRedis broker for one `async_task` call: the packed task goes into the sorted set with its time."""

    def __init__(self, broker, due: datetime):
        self.broker, self.due = broker, due
        self.list_key = broker.list_key

    def enqueue(self, task):
        return self.broker.enqueue_later(task, self.due.timestamp())


@functools.cache
def _delaying_broker(broker_class: str, list_key: str):
    """One broker (one Redis connection pool) per process: a save should not open a connection of its own."""
    from django_q.brokers import get_broker

    return get_broker(list_key)


def task_enqueue_later(func: str, *args, delay: float, task_name: str, group: str = "") -> None:
    """Queue `func(*args)` to start `delay` seconds from now (at once when delay <= 0). Raises QueueUnavailableError
    (logged once per outage) when the broker does not take it; a broker's own error never leaves here."""
    try:
        _enqueue(func, *args, delay=delay, task_name=task_name, group=group)
    except BROKER_ERRORS as error:
        raise outage.failed(task_name, error) from error
    outage.took()


def _enqueue(func: str, *args, delay: float, task_name: str, group: str) -> None:
    orm = bool(Conf.ORM and not Conf.BROKER_CLASS)
    if delay <= 0 or Conf.SYNC:
        with _queue_write(orm and not Conf.SYNC):  # Q_SYNC runs the task here: never inside a transaction of ours
            async_task(func, *args, task_name=task_name, group=group or None)
        return
    due = timezone.now() + timedelta(seconds=delay)
    if orm:
        with _queue_write(True):
            async_task(func, *args, task_name=task_name, group=group or None, broker=_DueLaterORM(due))
        return
    from zoho_sync.brokers import DelayingRedis

    broker = _delaying_broker(Conf.BROKER_CLASS or "", Conf.CLUSTER_NAME)
    if isinstance(broker, DelayingRedis):
        async_task(func, *args, task_name=task_name, group=group or None, broker=_DueLaterRedis(broker, due))
        return
    with _queue_write(True):
        Schedule.objects.create(name=f"{task_name} at {due:%H:%M:%S.%f}"[:100], func=func, args=repr(args),
                                schedule_type=Schedule.ONCE, next_run=due, repeats=1)


def _queue_write(in_database: bool):
    """A write to a queue in the database is its own atomic block (a savepoint inside the caller's transaction):
    a failed write then leaves the caller's transaction usable (PostgreSQL refuses every statement after an error
    until it is rolled back to a savepoint)."""
    return transaction.atomic(using=Conf.ORM or "default") if in_database else contextlib.nullcontext()


def queue_backlog(now: datetime) -> tuple[int | None, datetime | None]:
    """Tasks ready for a worker (None where the broker cannot say cheaply), and since when the oldest task that is
    due has waited (None: nothing due waits). The health check reads it, whichever broker is configured."""
    if Conf.ORM and not Conf.BROKER_CLASS:
        from django_q.models import OrmQ

        return None, OrmQ.objects.filter(lock__lte=now).order_by("lock").values_list("lock", flat=True).first()
    from zoho_sync.brokers import DelayingRedis

    broker = _delaying_broker(Conf.BROKER_CLASS or "", Conf.CLUSTER_NAME)
    if isinstance(broker, DelayingRedis):
        ready, oldest = broker.backlog(now.timestamp())
        return ready, datetime.fromtimestamp(oldest, tz=now.tzinfo) if oldest is not None else None
    return None, None
