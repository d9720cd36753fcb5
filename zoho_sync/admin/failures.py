"""Failed records: one row per record that is failed, waiting or blocked now, across entities (the SyncFailure
view), with its error, kind, attempts, next retry, what it holds up, and links to the record and its sync-log
history. Actions: retry now, skip, and retry all of an entity (after a confirmation page). Every action needs the
"Can sync to Zoho" permission and calls a service."""

from __future__ import annotations

from collections import defaultdict

from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from zoho_sync import selectors, services
from zoho_sync.admin.base import (
    ReadOnlyAdmin,
    can_sync,
    queued_message,
    queued_work_note,
    short_error,
    state_badge,
    sync_since,
)
from zoho_sync.admin.logs import EntityFilter
from zoho_sync.admin.records import push_selection, synclog_url
from zoho_sync.entities import BY_NAME, SPECS
from zoho_sync.models import SyncFailure, SyncState, SyncStatus
from zoho_sync.queueing import QueueUnavailableError


class StateFilter(admin.SimpleListFilter):
    """The one vocabulary's states a failed record can be in."""

    title = "state"
    parameter_name = "state"
    STATES = (SyncState.NEEDS_PERSON, SyncState.RETRYING, SyncState.WAITING, SyncState.BLOCKED)

    def lookups(self, request, model_admin):
        return [(state.value, state.label) for state in self.STATES]

    def queryset(self, request, queryset):
        value = self.value()
        if value == SyncState.NEEDS_PERSON:
            return queryset.filter(sync_status=SyncStatus.FAILED, next_retry_at__isnull=True)
        if value == SyncState.RETRYING:
            return queryset.filter(sync_status=SyncStatus.FAILED, next_retry_at__isnull=False)
        if value in (SyncState.WAITING, SyncState.BLOCKED):
            return queryset.filter(sync_status=value)
        return queryset


class FailureChangeList(ChangeList):
    """After the page's rows are read, one grouped query per dependent relation says what each of them holds up."""

    def get_results(self, request):
        super().get_results(request)
        by_entity = defaultdict(list)
        for row in self.result_list:
            by_entity[row.entity].append(row.record_id)
        blocks = {entity: selectors.sync_blocked_by(entity, pks) for entity, pks in by_entity.items()}
        for row in self.result_list:
            row.blocks = blocks.get(row.entity, {}).get(row.record_id, {})


def record_url(entity: str, pk) -> str:
    opts = BY_NAME[entity].model._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[pk])


@admin.register(SyncFailure)
class SyncFailureAdmin(ReadOnlyAdmin):
    list_display = ("record", "entity_name", "state", "error", "last_error_kind", "sync_attempts", "since",
                    "what_it_blocks", "history")
    list_display_links = None
    list_filter = (EntityFilter, StateFilter, "last_error_kind")
    search_fields = ("label", "zoho_id", "last_sync_error")
    search_help_text = "The record's label (account number, plan code, CS-<id>, invoice number, payment reference), " \
                       "its Zoho id, or words of the error."
    list_per_page = 50
    actions = ["retry_now", "skip_selected", "retry_all"]
    change_list_template = "admin/zoho_sync/syncfailure/change_list.html"

    def has_view_permission(self, request, obj=None):
        return super().has_view_permission(request, obj) or can_sync(request)

    def has_sync_permission(self, request) -> bool:
        return can_sync(request)

    def get_queryset(self, request):
        """selectors.failed_records(): the same records the alert command and the hourly alert count."""
        return selectors.failed_records()

    def get_changelist(self, request, **kwargs):
        return FailureChangeList

    def changelist_view(self, request, extra_context=None):
        if self.has_sync_permission(request):
            queued_work_note(request, "retries and queued pushes")
        return super().changelist_view(request, {**(extra_context or {}),
                                                 "has_sync_permission": self.has_sync_permission(request)})

    def change_view(self, request, object_id, form_url="", extra_context=None):
        """A failed record's page is the record's own page."""
        entity, _, pk = object_id.partition(":")
        if entity not in BY_NAME or not pk.isdigit():
            raise Http404("No such record.")
        return HttpResponseRedirect(record_url(entity, pk))

    # --- columns ---------------------------------------------------------------------------------------------
    @admin.display(description="Record", ordering="label")
    def record(self, obj):
        return format_html('<a href="{}">{}</a>', record_url(obj.entity, obj.record_id), obj.label or obj.record_id)

    @admin.display(description="Entity", ordering="entity_order")
    def entity_name(self, obj):
        return obj.entity.replace("_", " ")

    @admin.display(description="State", ordering="sync_status")
    def state(self, obj):
        return state_badge(obj.sync_state, suffix=sync_since(obj))

    @admin.display(description="Failing since", ordering="failing_since")
    def since(self, obj):
        return f"{timezone.localtime(obj.failing_since):%Y-%m-%d %H:%M}" if obj.failing_since else "-"

    @admin.display(description="Error")
    def error(self, obj):
        return short_error(obj.last_sync_error)

    @admin.display(description="Blocks")
    def what_it_blocks(self, obj):
        blocks = getattr(obj, "blocks", {})
        if not blocks:
            return "-"
        return format_html_join(", ", "{} {}", ((n, entity.replace("_", " ")) for entity, n in blocks.items()))

    @admin.display(description="History")
    def history(self, obj):
        return format_html('<a href="{}">sync log</a>', synclog_url(obj.entity, obj.record_id))

    # --- actions ---------------------------------------------------------------------------------------------
    @staticmethod
    def selection(queryset) -> dict[str, list[int]]:
        chosen: dict[str, list[int]] = defaultdict(list)
        for entity, pk in queryset.values_list("entity", "record_id"):
            chosen[entity].append(pk)
        return dict(chosen)

    @admin.action(description="Retry selected now (a few: pushed at once; many: queued)", permissions=["sync"])
    def retry_now(self, request, queryset):
        push_selection(request, self.selection(queryset))

    @admin.action(description="Skip selected (stop pushing them until they change)", permissions=["sync"])
    def skip_selected(self, request, queryset):
        skipped = services.sync_skip(selection=self.selection(queryset), by=request.user.get_username())
        self.message_user(request, f"{skipped} record(s) skipped: they are not pushed until they change. A record a "
                                   "worker was pushing at that moment is left as it is.", messages.SUCCESS)

    @admin.action(description="Retry all failures of the selected records' entities…", permissions=["sync"])
    def retry_all(self, request, queryset):
        entities = [spec.name for spec in SPECS if spec.name in set(queryset.values_list("entity", flat=True))]
        url = reverse("admin:zoho_sync_syncfailure_retry_all")
        return HttpResponseRedirect(f"{url}?entity={','.join(entities)}")

    # --- retry all of an entity, behind a confirmation page -------------------------------------------------
    def get_urls(self):
        view = self.admin_site.admin_view(self.retry_all_view)
        return [path("retry-all/", view, name="zoho_sync_syncfailure_retry_all"), *super().get_urls()]

    def retry_all_view(self, request):
        if not self.has_sync_permission(request):
            raise PermissionDenied
        source = request.POST if request.method == "POST" else request.GET
        chosen = [name for name in source.get("entity", "").split(",") if name in BY_NAME] or [s.name for s in SPECS]
        changelist = reverse("admin:zoho_sync_syncfailure_changelist")
        if request.method == "POST" and source.get("confirm") == "yes":
            include = source.get("include_validation") == "on"
            try:
                for entity in chosen:
                    services.sync_retry_queue(entity=entity, include_validation=include)
            except QueueUnavailableError:
                messages.error(request, "The task queue is unreachable, so no retry was queued; the hourly retry "
                                        "schedule retries the failures once it is back, or try again then.")
                return HttpResponseRedirect(changelist)
            queued = (f"Queued a retry of every failure of {', '.join(chosen)}"
                      f"{' (failures that need a person included)' if include else ''}")
            queued_message(request, f"{queued}; the records change state here as the cluster pushes them.",
                           waiting=f"{queued}.", what="the retry", level=messages.SUCCESS)
            return HttpResponseRedirect(changelist)
        counts = selectors.sync_open_counts(specs=tuple(BY_NAME[name] for name in chosen))
        rows = [{"entity": name.replace("_", " "),
                 **{state.value: counts[name][state] for state in StateFilter.STATES}} for name in chosen]
        context = {**self.admin_site.each_context(request), "title": "Retry all failures", "rows": rows,
                   "entities": ",".join(chosen), "opts": self.model._meta, "changelist_url": changelist,
                   "now": timezone.now()}
        return TemplateResponse(request, "admin/zoho_sync/syncfailure/retry_all.html", context)
