"""The event inbox in the admin: every change that came in from Zoho, its state, error and outcome; quarantined
events wait here for a person, who replays them after a fix (the "Can sync to Zoho" permission)."""

from __future__ import annotations

import json

from django.contrib import admin, messages
from django.template.defaultfilters import pluralize
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from zoho_sync import inbox
from zoho_sync.admin.base import ReadOnlyAdmin, can_sync, queued_work_note, short_error
from zoho_sync.models import DriftReport, ZohoEvent


def breakable(name: str):
    """A snake_case name that may break after its underscores in a narrow column (the text itself unchanged)."""
    parts = name.split("_")
    return format_html_join(mark_safe("_<wbr>"), "{}", ((part,) for part in parts)) if len(parts) > 1 else name


@admin.register(ZohoEvent)
class ZohoEventAdmin(ReadOnlyAdmin):
    # Fits 1,400 px beside the filters: the attempts are said in the state's cell, names break after their
    # underscores, and the error and outcome are cut short (whole in their tooltip and on the event's page).
    list_display = ("received", "kind", "entity_name", "zoho_id", "source", "state_attempts", "error",
                    "short_outcome")
    list_filter = ("state", "source", "entity", "event_type")
    search_fields = ("=event_id", "=zoho_id")
    search_help_text = "Zoho's event id, or the Zoho id of the record it is about."
    readonly_fields = ("event_id", "event_type", "event_time", "source", "entity", "zoho_id", "state", "attempts",
                       "last_error", "outcome", "next_attempt_at", "received_at", "processed_at", "pretty_payload")
    exclude = ("payload", "claimed_until")
    actions = ["replay"]
    list_per_page = 100

    def has_sync_permission(self, request) -> bool:
        return can_sync(request)

    @admin.display(description="Received at", ordering="received_at")
    def received(self, obj):
        return f"{timezone.localtime(obj.received_at):%Y-%m-%d %H:%M:%S}"

    @admin.display(description="Event type", ordering="event_type")
    def kind(self, obj):
        return breakable(obj.event_type)

    @admin.display(description="Entity", ordering="entity")
    def entity_name(self, obj):
        return breakable(obj.entity)

    @admin.display(description="State", ordering="state")
    def state_attempts(self, obj):
        if not obj.attempts:
            return obj.get_state_display()
        return f"{obj.get_state_display()} ({obj.attempts} attempt{pluralize(obj.attempts)})"

    @admin.display(description="Error")
    def error(self, obj):
        return short_error(obj.last_error)

    @admin.display(description="Outcome")
    def short_outcome(self, obj):
        return short_error(obj.outcome)

    @admin.display(description="Payload")
    def pretty_payload(self, obj):
        return format_html("<pre style='white-space:pre-wrap'>{}</pre>", json.dumps(obj.payload, indent=2)[:20000])

    @admin.action(description="Apply selected again (after a fix)", permissions=["sync"])
    def replay(self, request, queryset):
        count = inbox.event_replay(list(queryset.values_list("pk", flat=True)))
        self.message_user(request, f"{count} event(s) queued to be applied again; a record already as Zoho has it "
                                   "is left unchanged.", messages.SUCCESS)
        queued_work_note(request, "the events")


@admin.register(DriftReport)
class DriftReportAdmin(ReadOnlyAdmin):
    """The reconciliations (zoho_reconcile, and the monthly schedule): what differed from Zoho, what was repaired.
    The list opens with the latest report whole."""

    change_list_template = "admin/zoho_sync/driftreport/change_list.html"

    list_display = ("started_at", "entities", "drift", "conflicts", "repaired", "records", "api_calls", "repair")
    list_filter = ("repair",)
    readonly_fields = ("started_at", "finished_at", "entities", "repair", "drift", "conflicts", "repaired",
                       "records", "api_calls", "report_text")
    exclude = ("report", "text")

    @admin.display(description="Report")
    def report_text(self, obj):
        return format_html("<pre style='white-space:pre-wrap'>{}</pre>", obj.text)

    def changelist_view(self, request, extra_context=None):
        latest = DriftReport.objects.order_by("-started_at").first()
        return super().changelist_view(request, {**(extra_context or {}), "latest": latest})
