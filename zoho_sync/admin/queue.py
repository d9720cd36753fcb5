"""django-q2's own pages (scheduled, successful, failed and queued tasks), re-registered so that nothing there starts
work without "Can sync to Zoho": staff with the view permission see them; resubmitting a task, and adding,
changing or deleting a schedule or a queued task, need that permission too; a schedule names only this
product's task functions (zoho_sync.task_funcs)."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django_q import admin as q_admin  # registers django-q2's admins first, so they can be replaced
from django_q.models import Failure, OrmQ, Schedule, Success

from zoho_sync.admin.base import can_sync
from zoho_sync.task_funcs import schedule_problems, task_funcs, tasks_resubmit


class SyncGated:
    """Adding, changing and deleting need the model's permission and "Can sync to Zoho"."""

    def has_sync_permission(self, request) -> bool:
        return can_sync(request)

    def has_add_permission(self, request, *args) -> bool:
        return super().has_add_permission(request, *args) and can_sync(request)

    def has_change_permission(self, request, obj=None) -> bool:
        return super().has_change_permission(request, obj) and can_sync(request)

    def has_delete_permission(self, request, obj=None) -> bool:
        return super().has_delete_permission(request, obj) and can_sync(request)


@admin.action(description="Resubmit selected tasks to the queue", permissions=["sync"])
def resubmit_tasks(model_admin, request, queryset):
    queued, refused = tasks_resubmit(queryset, delete=model_admin.model is Failure)
    model_admin.message_user(request, f"{queued} task(s) queued again.", messages.SUCCESS)
    if refused:
        model_admin.message_user(request, f"{len(refused)} task(s) not queued: they name no task function of this "
                                          f"product, or a hook: {', '.join(refused)}.", messages.ERROR)


class TaskAdmin(q_admin.TaskAdmin):
    actions = [resubmit_tasks]

    def has_sync_permission(self, request) -> bool:
        return can_sync(request)


@admin.action(description="Acknowledge selected failures (the health check stops warning until a new one)",
              permissions=["sync"])
def acknowledge_failures(model_admin, request, queryset):
    from zoho_sync.acknowledgements import failed_tasks_acknowledge, failed_tasks_open

    ack = failed_tasks_acknowledge(queryset, by=request.user.get_username())
    left = failed_tasks_open()[0].count()
    model_admin.message_user(request, f"Acknowledged: {ack.sentence()}. The health check warns again when a task "
                                      "fails after that" + (f"; {left} later failure(s) still count." if left else
                                                            "."), messages.SUCCESS)


class FailAdmin(q_admin.FailAdmin):
    actions = [resubmit_tasks, acknowledge_failures]

    def has_sync_permission(self, request) -> bool:
        return can_sync(request)


class ScheduleForm(forms.ModelForm):
    """The admin's form for a schedule (the admin gives it the model and fields), with the allow-list's checks."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "func" in self.fields:
            self.fields["func"].help_text = "One of this product's task functions: " + ", ".join(sorted(task_funcs()))

    def clean(self):
        data = super().clean()
        problems = schedule_problems(func=data.get("func"), hook=data.get("hook"), kwargs=data.get("kwargs"))
        for name, message in problems.items():
            if name not in self.errors:  # a field refused already (say, func left empty) keeps its own message
                self.add_error(name if name in self.fields else None, message)
        return data


class ScheduleAdmin(SyncGated, q_admin.ScheduleAdmin):
    form = ScheduleForm


class QueueAdmin(SyncGated, q_admin.QueueAdmin):
    pass


for model, model_admin in ((Schedule, ScheduleAdmin), (Success, TaskAdmin), (Failure, FailAdmin), (OrmQ, QueueAdmin)):
    if admin.site.is_registered(model):  # django-q2 registers its queue's page only for the ORM broker
        admin.site.unregister(model)
        admin.site.register(model, model_admin)
