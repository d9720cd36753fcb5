"""What every admin page of the sync shares: the sync columns and record page of a synced model, read-only admins,
a paginator that never counts a whole big table, and the "Can sync to Zoho" permission. Display only: every action
calls a service."""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.paginator import Paginator
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.html import format_html
from django.utils.text import Truncator, capfirst

from zoho_sync.models import SYNC_PERMISSION, SyncState

STATE_COLOURS = {
    SyncState.PENDING: "#8a6d00",
    SyncState.SYNCED: "#2e7d32",
    SyncState.NEEDS_PERSON: "#c62828",
    SyncState.RETRYING: "#d84315",
    SyncState.WAITING: "#205493",
    SyncState.BLOCKED: "#6a1b9a",
    SyncState.SKIPPED: "#666666",
}
ERROR_CHARS = 60  # the short error a changelist shows (the whole one is its tooltip and on the record's page)


def can_sync(request) -> bool:
    return request.user.is_active and request.user.has_perm(SYNC_PERMISSION)


def state_badge(state: SyncState, *, title: str = "", suffix: str = ""):
    return format_html('<span class="sync-state sync-{}" style="color:{};font-weight:bold" title="{}">{}{}</span>',
                       state.value, STATE_COLOURS.get(state, "#333"), title or state.label, state.label, suffix)


def short_error(text: str):
    if not text:
        return ""
    return format_html('<span class="sync-error" title="{}">{}</span>', text, Truncator(text).chars(ERROR_CHARS))


START_CLUSTER = "Start one with: manage.py qcluster (and install the schedules once with: manage.py zoho_schedules)."


def queued_work_note(request, what: str) -> None:
    """Say that queued work waits when no django-q2 cluster runs, and how to start one."""
    from zoho_sync.cluster import cluster_alive

    if not cluster_alive():
        _no_cluster_warning(request, what)


def _no_cluster_warning(request, what: str) -> None:
    messages.warning(request, f"No django-q2 cluster is running: {what} will wait until one starts. " + START_CLUSTER)


def queued_message(request, queued: str, *, waiting: str, what: str, level=messages.INFO) -> None:
    """The messages about queued work, from the one answer to "is a cluster running" (zoho_sync.cluster): while
    a cluster runs, `queued` (which may promise when it starts); otherwise `waiting` (it is queued, no promise) and
    the warning that `what` waits for a cluster. Never a promise beside the warning."""
    from zoho_sync.cluster import cluster_alive

    if cluster_alive():
        messages.add_message(request, level, queued)
    else:
        messages.add_message(request, level, waiting)
        _no_cluster_warning(request, what)  # the same reading: never "starts in 5 s" beside "no cluster"


class CappedPaginator(Paginator):
    """Counts at most CAP + 1 rows (a LIMITed subquery), never a whole big table: a changelist of a million
    customers pages as quickly as one of a hundred. Past CAP rows it says "more than CAP"; search or filter to
    narrow."""

    CAP = 10_000

    @cached_property
    def count(self) -> int:
        rows = self.object_list
        # Without its ORDER BY: the count needs no sort, and an index can answer it alone.
        counted = rows.order_by()[: self.CAP + 1].count() if hasattr(rows, "query") else len(rows)
        self.capped = counted > self.CAP
        return min(counted, self.CAP)

    capped = False


class CappedCountAdmin(admin.ModelAdmin):
    paginator = CappedPaginator
    show_full_result_count = False  # the full count is an unbounded COUNT(*) on every page view


class ReadOnlyAdmin(CappedCountAdmin):
    """Rows written by the sync alone: shown, never added, changed or deleted here."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        # The page is titled with its one name ("Sync log", "Failed records", "Sync runs"), as the admin index,
        # the guide and the commands name it, not Django's "Select sync log entry to view".
        title = capfirst(self.model._meta.verbose_name_plural)
        return super().changelist_view(request, {"title": title, **(extra_context or {})})


def sync_since(obj) -> str:
    if obj.next_retry_at and obj.sync_state in (SyncState.RETRYING, SyncState.WAITING):
        return f" at {timezone.localtime(obj.next_retry_at):%Y-%m-%d %H:%M}"
    return ""
