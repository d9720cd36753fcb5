"""Queue a django-q2 task to run later without any worker sleeping it out.

On the ORM broker (this project's: Q_CLUSTER["orm"]) a queued row is taken by a worker only once its `lock` lies
in the past (django_q.brokers.orm.ORM.dequeue takes rows with lock < now), so a task due later is simply written
with lock = its due time, through django-q2's own `async_task` and a broker subclass. On Redis (`Q_BROKER=redis`)
the broker is zoho_sync.brokers.DelayingRedis, which holds the task in a sorted set until its time. With any other
broker the task becomes a one-off django-q2 Schedule, which the cluster's scheduler starts within about 30 s of
its time.
"""

from __future__ import annotations

import functools
from datetime import datetime, timedelta

from django.utils import timezone
from django_q.brokers.orm import ORM
from django_q.conf import Conf
from django_q.models import Schedule
from django_q.tasks import async_task


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
    """Queue `func(*args)` to start `delay` seconds from now (at once when delay <= 0)."""
    if delay <= 0 or Conf.SYNC:
        async_task(func, *args, task_name=task_name, group=group or None)
        return
    due = timezone.now() + timedelta(seconds=delay)
    if Conf.ORM and not Conf.BROKER_CLASS:
        async_task(func, *args, task_name=task_name, group=group or None, broker=_DueLaterORM(due))
        return
    from zoho_sync.brokers import DelayingRedis

    broker = _delaying_broker(Conf.BROKER_CLASS or "", Conf.CLUSTER_NAME)
    if isinstance(broker, DelayingRedis):
        async_task(func, *args, task_name=task_name, group=group or None, broker=_DueLaterRedis(broker, due))
        return
    Schedule.objects.create(name=f"{task_name} at {due:%H:%M:%S.%f}"[:100], func=func, args=repr(args),
                            schedule_type=Schedule.ONCE, next_run=due, repeats=1)


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
