"""The read-only admins of what the sync wrote: the sync log (every attempt), the failed attempts, the runs and the
API usage against the daily quota. Built to stay fast on tens of millions of log rows: filters with fixed choices
(never a DISTINCT over the log), searches that resolve a label through the records' indexes, capped counts."""

from __future__ import annotations

import re
from datetime import timedelta

from django.contrib import admin
from django.db.models import Q, Sum
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.text import Truncator

from zoho_sync import selectors
from zoho_sync.admin.base import ReadOnlyAdmin
from zoho_sync.conf import get_zoho_limits
from zoho_sync.entities import SPECS
from zoho_sync.models import ApiUsage, FailedSyncLog, SyncLog, SyncRun
from zoho_sync.sync_runs import sync_run_details

RUN_STATE_CHARS = 120  # a run's state and stop reason in the list (whole in its tooltip and on the run's page)


class EntityFilter(admin.SimpleListFilter):
    """The entities from the specs: a fixed list, where Django's default would read every distinct log value."""

    title = "entity"
    parameter_name = "entity"

    def lookups(self, request, model_admin):
        return [(spec.name, spec.name.replace("_", " ")) for spec in SPECS]

    def queryset(self, request, queryset):
        return queryset.filter(entity=self.value()) if self.value() else queryset


def record_filter(admin_site, term: str) -> Q:
    """Log rows of the records a label names (account number, plan code, CS-<id>, invoice number, payment
    reference, email, Zoho id), found through each record admin's exact, indexed search."""
    query = Q(pk__in=[])
    for spec in SPECS:
        record_admin = admin_site._registry.get(spec.model)
        exact = record_admin.exact_terms(term) if record_admin else None
        if exact is None:
            continue
        pks = list(spec.model.objects.filter(exact).values_list("pk", flat=True)[:100])
        if pks:
            query |= Q(entity=spec.name, object_pk__in=[str(pk) for pk in pks])
    return query


@admin.register(SyncLog)
class SyncLogAdmin(ReadOnlyAdmin):
    """Read-only: the log is append-only, written by the sync engine alone."""

    list_display = ("created_at", "entity", "record", "action", "status", "short_message", "error_kind",
                    "http_status")
    list_filter = ("status", EntityFilter, "action", "error_kind", "direction")
    search_fields = ("=run_id",)  # the search box; get_search_results does the rest
    search_help_text = ("A record's label (account number, plan code, CS-<id>, invoice number, payment reference), "
                        "its email or Zoho id, or a run id.")
    list_per_page = 100

    def lookup_allowed(self, lookup, value, request=None):
        return lookup in ("object_pk", "entity") or super().lookup_allowed(lookup, value, request)

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        query = Q(run_id=term) | record_filter(self.admin_site, term)
        if re.fullmatch(r"\d+", term):
            query |= Q(object_pk=term)
        return queryset.filter(query), False

    @admin.display(description="Record", ordering="object_pk")
    def record(self, obj):
        return obj.object_repr or obj.object_pk

    @admin.display(description="Message")
    def short_message(self, obj):
        text = obj.zoho_message or obj.message
        return format_html('<span title="{}">{}</span>', text, Truncator(text).chars(80))


@admin.register(FailedSyncLog)
class FailedSyncLogAdmin(SyncLogAdmin):
    """Every failed attempt, as logged (the failed records themselves are the "failed records" list)."""

    list_filter = (EntityFilter, "error_kind", "action")


@admin.register(SyncRun)
class SyncRunAdmin(ReadOnlyAdmin):
    """Read-only: every backfill, retry and triggered push as it ran (or runs); a silent one shows as dead."""

    list_display = ("started", "kind", "run_state", "entity_list", "records", "api_calls", "rate_limited",
                    "exit_code", "finished", "host", "short_run_id")
    list_filter = ("kind", "status")
    search_fields = ("=run_id", "host")
    list_per_page = 100
    # The run's page: its details in words (sync_runs.sync_run_details) where the stored JSON would be.
    fields = ("run_id", "kind", "status", "details", "entity_list", "since", "started_at", "finished_at",
              "heartbeat_at", "host", "pid", "workers", "exit_code")
    readonly_fields = ("details", "entity_list")

    @admin.display(description="Started", ordering="started_at")
    def started(self, obj):
        return f"{timezone.localtime(obj.started_at):%Y-%m-%d %H:%M}"

    @admin.display(description="Finished", ordering="finished_at")
    def finished(self, obj):
        return f"{timezone.localtime(obj.finished_at):%Y-%m-%d %H:%M}" if obj.finished_at else "-"

    @admin.display(description="State", ordering="status")
    def run_state(self, obj):
        """The state and why it stopped, cut short in the list (whole in the tooltip and on the run's page)."""
        text = obj.state_label
        if obj.stop_reason:
            text = f"{text}: {obj.stop_reason}"
        if obj.resume_at:
            text = f"{text} (resumes {timezone.localtime(obj.resume_at):%Y-%m-%d %H:%M})"
        return format_html('<span title="{}">{}</span>', text, Truncator(text).chars(RUN_STATE_CHARS))

    @admin.display(description="Entities", ordering="entities")
    def entity_list(self, obj):
        return ", ".join(name.replace("_", " ") for name in obj.entities.split(",") if name)

    @admin.display(description="What it did")
    def details(self, obj):
        return format_html('<dl class="run-details" id="run-details">{}</dl>', format_html_join(
            "", "<dt>{}</dt><dd>{}</dd>", sync_run_details(obj)))

    @admin.display(description="Run", ordering="run_id")
    def short_run_id(self, obj):
        return obj.run_id[:12]


@admin.register(ApiUsage)
class ApiUsageAdmin(ReadOnlyAdmin):
    """Calls made to Zoho per UTC day and endpoint (ids left out), counted by every process, against the quota."""

    list_display = ("day", "endpoint", "calls", "share_of_quota", "organization_id")
    list_filter = ("day",)
    search_fields = ("endpoint",)
    date_hierarchy = "day"
    change_list_template = "admin/zoho_sync/apiusage/change_list.html"

    @admin.display(description="Share of the day's quota")
    def share_of_quota(self, obj):
        return f"{obj.calls / max(1, get_zoho_limits().daily_limit):.1%}"

    def changelist_view(self, request, extra_context=None):
        limits = get_zoho_limits()
        today = timezone.now().date()
        per_day = dict(ApiUsage.objects.filter(day__gt=today - timedelta(days=14)).order_by()
                       .values_list("day").annotate(calls=Sum("calls")))
        # Today's total is the shared budget's count, exact across processes; the endpoint rows below it are
        # written in batches and may trail it by a few seconds.
        if calls_today := selectors.api_calls_today():
            per_day[today] = calls_today
        days = sorted(per_day.items(), reverse=True)
        extra = {"usage_days": [{"day": day, "calls": calls, "share": calls / max(1, limits.daily_limit),
                                 "width": min(100, round(100 * calls / max(1, limits.daily_limit)))}
                                for day, calls in days],
                 "daily_limit": limits.daily_limit, "per_minute": limits.per_minute,
                 "daily_reserve": limits.daily_reserve}
        return super().changelist_view(request, {**(extra_context or {}), **extra})
