"""This product's django-q2 task functions: the only ones a Schedule may name, and the only ones the admin resubmits.

The allow-list is read from the code (the public functions of the task modules, and what `zoho_schedules`
installs), never typed out. It is enforced by the admin's schedule form, by a pre_save check on every Schedule
(the admin, fixtures, `Schedule.objects.create`), and where the cluster's scheduler queues a schedule's task (a
row written around the ORM runs a refusal instead, recorded as a failed task saying why).
"""

from __future__ import annotations

import ast
import functools
import importlib
import inspect
import logging

from django.core.exceptions import ValidationError
from django.db.models import Q
from django.db.models.signals import pre_save
from django.dispatch import receiver
from django_q.models import Schedule
from django_q.signals import pre_enqueue

logger = logging.getLogger(__name__)
TASK_MODULES = ("zoho_sync.tasks", "monitoring.tasks")


@functools.cache
def task_funcs() -> frozenset[str]:
    """The dotted paths of this product's task functions."""
    from zoho_sync.schedules import SCHEDULES

    names = {planned.func for planned in SCHEDULES}
    for module_name in TASK_MODULES:
        module = importlib.import_module(module_name)
        names |= {f"{module_name}.{name}" for name, value in vars(module).items()
                  if inspect.isfunction(value) and value.__module__ == module_name and not name.startswith("_")}
    return frozenset(names)


def func_dotted(func) -> str:
    """A task's function as its dotted path (django-q2 takes a path or a callable)."""
    if callable(func):
        return f"{getattr(func, '__module__', '')}.{getattr(func, '__qualname__', repr(func))}"
    return str(func or "")


def _kwargs_options(text: str | None) -> bool:
    """Whether a Schedule's kwargs text carries q_options (read as django-q2's scheduler reads it)."""
    if not text:
        return False
    try:
        parsed = ast.literal_eval(text)
    except (SyntaxError, ValueError):
        try:
            parsed = {kw.arg: None for kw in ast.parse(f"f({text})").body[0].value.keywords}
        except (SyntaxError, ValueError, AttributeError, IndexError):
            return False  # the scheduler reads it as no keyword arguments at all
    return isinstance(parsed, dict) and "q_options" in parsed


def schedule_problems(*, func, hook, kwargs) -> dict[str, str]:
    """What would make the cluster run anything but this product's task functions, by field; empty when none."""
    problems = {}
    name = func_dotted(func)
    if name not in task_funcs():
        problems["func"] = (f"{name or 'An empty function'!r} is not one of this product's task functions; a schedule "
                            f"may name only: {', '.join(sorted(task_funcs()))}.")
    if hook:
        problems["hook"] = (f"A hook is a function the cluster calls after the task; this product's schedules use "
                            f"none, so {func_dotted(hook)!r} is refused. Leave it empty.")
    if _kwargs_options(kwargs):
        problems["kwargs"] = ("q_options can add hooks, chained tasks or another broker; this product's schedules "
                              "use none. Remove q_options.")
    return problems


@receiver(pre_save, sender=Schedule, dispatch_uid="zoho_sync.schedule_refuse_foreign")
def schedule_refuse_foreign(sender, instance: Schedule, **kwargs) -> None:
    """Refuse to write a Schedule that names a function outside the allow-list (or a hook, or q_options).

    A row already stored that way (written around the ORM) may still be saved unchanged, as the cluster's
    scheduler does after each run: refusing it there would stop every other schedule; the pre_enqueue check
    below refuses its task instead."""
    problems = schedule_problems(func=instance.func, hook=instance.hook, kwargs=instance.kwargs)
    if not problems:
        return
    if instance.pk is not None:
        stored = Schedule.objects.filter(pk=instance.pk).values("func", "hook", "kwargs").first()
        if stored == {"func": instance.func, "hook": instance.hook, "kwargs": instance.kwargs}:
            return
    raise ValidationError({field: [message] for field, message in problems.items()})


def refused(reason: str) -> None:
    """What the cluster runs in place of a refused schedule's task: a failure that says why."""
    raise PermissionError(reason)


@receiver(pre_enqueue, dispatch_uid="zoho_sync.task_refuse_foreign_schedule")
def task_refuse_foreign_schedule(sender, task: dict, **kwargs) -> None:
    """A task queued from a Schedule that names a function outside the allow-list (or carries a hook or a chain)
    runs `refused` instead."""
    if func_dotted(task.get("func")) in task_funcs() and not task.get("hook") and not task.get("chain"):
        return
    group = str(task.get("group") or "")
    lookup = Q(name=group) | (Q(pk=int(group)) if group.isdigit() and len(group) < 19 else Q(pk__in=[]))
    if not group or not Schedule.objects.filter(lookup).exists():
        return
    reason = (f"Schedule {group!r} names {func_dotted(task.get('func'))!r}"
              f"{' with a hook or chained tasks' if task.get('hook') or task.get('chain') else ''}, which is not "
              f"one of this product's task functions: refused, nothing ran.")
    logger.error("%s", reason)
    task.update(func=f"{__name__}.refused", args=(reason,), kwargs={})
    task.pop("hook", None)
    task.pop("chain", None)


def tasks_resubmit(tasks, *, delete: bool) -> tuple[int, list[str]]:
    """Queue the given django-q2 task rows again (deleting each queued one when `delete`, as django-q2 does for
    failures); a task naming a function outside the allow-list is refused. Returns (queued, refused names)."""
    from django_q.tasks import async_task

    queued, refused_names = 0, []
    for task in tasks:
        if func_dotted(task.func) not in task_funcs() or task.hook:
            refused_names.append(f"{task.name} ({func_dotted(task.func)})")
            continue
        async_task(task.func, *task.args or (), group=task.group, cluster=task.cluster, **task.kwargs or {})
        queued += 1
        if delete:
            task.delete()
    return queued, refused_names
