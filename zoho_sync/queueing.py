"""Queue a django-q2 task to run later without any worker sleeping it out.

On the ORM broker (this project's: Q_CLUSTER["orm"]) a queued row is taken by a worker only once its `lock` lies
in the past (django_q.brokers.orm.ORM.dequeue takes rows with lock < now), so a task due later is simply written
with lock = its due time, through django-q2's own `async_task` and a broker subclass. With another broker the task
becomes a one-off django-q2 Schedule, which the cluster's scheduler starts within about 30 s of its time.
"""

from __future__ import annotations

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


def task_enqueue_later(func: str, *args, delay: float, task_name: str, group: str = "") -> None:
    """Queue `func(*args)` to start `delay` seconds from now (at once when delay <= 0)."""
    if delay <= 0 or Conf.SYNC:
        async_task(func, *args, task_name=task_name, group=group or None)
        return
    due = timezone.now() + timedelta(seconds=delay)
    if Conf.ORM and not Conf.BROKER_CLASS:
        async_task(func, *args, task_name=task_name, group=group or None, broker=_DueLaterORM(due))
        return
    Schedule.objects.create(name=f"{task_name} at {due:%H:%M:%S.%f}"[:100], func=func, args=repr(args),
                            schedule_type=Schedule.ONCE, next_run=due, repeats=1)
