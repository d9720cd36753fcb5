"""Django admin for the billing mirror and the sync log. Display and actions only: actions call services."""

from __future__ import annotations

import re
from decimal import Decimal

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.forms.models import BaseInlineFormSet
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.text import Truncator

from zoho_sync import services, validation
from zoho_sync.conf import ZohoConfigurationError
from zoho_sync.models import (
    ApiUsage,
    Customer,
    CustomerService,
    FailedSyncLog,
    Invoice,
    InvoiceLine,
    Payment,
    ServicePackage,
    SyncLog,
    SyncRun,
    SyncState,
    ZohoSyncedModel,
)

admin.site.site_header = "Zoho Billing sync"
admin.site.site_title = "Zoho Billing sync"
admin.site.index_title = "Billing records and their sync with Zoho"

STATE_COLOURS = {
    SyncState.PENDING: "#8a6d00",
    SyncState.SYNCED: "#2e7d32",
    SyncState.NEEDS_PERSON: "#c62828",
    SyncState.RETRYING: "#d84315",
    SyncState.WAITING: "#205493",
    SyncState.BLOCKED: "#6a1b9a",
    SyncState.SKIPPED: "#666666",
}


class ZohoSyncedAdmin(admin.ModelAdmin):
    """Base admin for synced models: appends the sync columns, filter, read-only bookkeeping and actions."""

    sync_columns = ("sync_badge", "sync_error", "zoho_id", "last_synced_at")
    sync_readonly = ZohoSyncedModel.BOOKKEEPING
    actions = ["push_now", "mark_for_sync"]
    list_per_page = 50
    # Counting every row of a 100,000-row table on each page view is what makes big changelists slow.
    show_full_result_count = False

    def get_list_display(self, request):
        return (*super().get_list_display(request), *self.sync_columns)

    def get_list_filter(self, request):
        return ("sync_status", "last_error_kind", *super().get_list_filter(request))

    def get_readonly_fields(self, request, obj=None):
        return (*super().get_readonly_fields(request, obj), *self.sync_readonly)

    def get_fieldsets(self, request, obj=None):
        own = [f for f in self.get_fields(request, obj) if f not in self.sync_readonly]
        return [(None, {"fields": own}), ("Zoho sync", {"fields": self.sync_readonly, "classes": ["collapse"]})]

    @admin.display(description="Sync", ordering="sync_status")
    def sync_badge(self, obj):
        """The record's state in the one vocabulary, with its retry time when it has one."""
        state = obj.sync_state
        label = state.label
        if obj.next_retry_at and state in (SyncState.RETRYING, SyncState.WAITING):
            label = f"{label} at {timezone.localtime(obj.next_retry_at):%Y-%m-%d %H:%M}"
        title = obj.last_sync_error or label
        return format_html('<span style="color:{};font-weight:bold" title="{}">{}</span>',
                           STATE_COLOURS.get(state, "#333"), title, label)

    @admin.display(description="Last error")
    def sync_error(self, obj):
        if not obj.last_sync_error:
            return ""
        return format_html('<span title="{}">{}</span>', obj.last_sync_error,
                           Truncator(obj.last_sync_error).chars(70))

    @admin.action(description="Push selected to Zoho now", permissions=["change"])
    def push_now(self, request, queryset):
        try:
            counts = services.sync_queryset(queryset=queryset)
        except ZohoConfigurationError as exc:
            self.message_user(request, f"Zoho is not configured: {exc}", messages.ERROR)
            return
        self.report_push(request, counts)

    def report_push(self, request, counts: dict[str, int]) -> None:
        """One message per outcome, in the same words as the commands and the dashboard."""
        if counts.get("queued"):
            self.message_user(request, f"{counts['queued']} records queued; they are pushed in the background.",
                              messages.INFO)
        if counts.get(SyncState.SYNCED):
            self.message_user(request, f"{counts[SyncState.SYNCED]} record(s) pushed to Zoho.", messages.SUCCESS)
        if counts.get(SyncState.SKIPPED):
            self.message_user(request, f"{counts[SyncState.SKIPPED]} record(s) skipped by the sync rules (see why "
                                       "on each record).", messages.INFO)
        failed = counts.get(SyncState.NEEDS_PERSON, 0) + counts.get(SyncState.RETRYING, 0)
        if failed:
            failed_url = reverse("admin:zoho_sync_failedsynclog_changelist")
            self.message_user(request, format_html(
                '{} record(s) failed ({} need a person, {} will be retried): see the <a href="{}">failed syncs</a>.',
                failed, counts.get(SyncState.NEEDS_PERSON, 0), counts.get(SyncState.RETRYING, 0), failed_url),
                messages.WARNING)
        waiting = counts.get(SyncState.WAITING, 0) + counts.get(SyncState.BLOCKED, 0)
        if waiting:
            self.message_user(request, f"{waiting} record(s) wait for a record they depend on "
                                       f"({counts.get(SyncState.BLOCKED, 0)} blocked by one that needs a person); "
                                       "each record says which.", messages.WARNING)
        if counts.get("busy") or counts.get(SyncState.PENDING):
            self.message_user(request, f"{counts.get('busy', 0) + counts.get(SyncState.PENDING, 0)} record(s) were "
                                       "being pushed by another worker or changed meanwhile; they are pushed with "
                                       "their latest data shortly.", messages.INFO)

    @admin.action(description="Queue selected for sync with Zoho", permissions=["change"])
    def mark_for_sync(self, request, queryset):
        count = services.sync_mark_pending(queryset=queryset)
        self.message_user(request, f"{count} record(s) queued for sync with Zoho.", messages.SUCCESS)


@admin.register(Customer)
class CustomerAdmin(ZohoSyncedAdmin):
    list_display = ("account_number", "name", "email", "account_type", "status")
    list_filter = ("account_type", "status", "currency_code")
    search_fields = ("account_number", "email", "company_name", "last_name", "first_name", "zoho_id")


@admin.register(ServicePackage)
class ServicePackageAdmin(ZohoSyncedAdmin):
    list_display = ("name", "plan_code", "price", "interval", "interval_unit", "is_active")
    list_filter = ("is_active", "interval_unit")
    search_fields = ("name", "plan_code", "zoho_id")
    sync_readonly = (*ZohoSyncedAdmin.sync_readonly, "zoho_product_id")


@admin.register(CustomerService)
class CustomerServiceAdmin(ZohoSyncedAdmin):
    list_display = ("__str__", "customer", "package", "status", "activated_at", "cancelled_at")
    list_filter = ("status", "package")
    list_select_related = ("customer", "package")
    search_fields = ("customer__account_number", "customer__email", "package__plan_code", "zoho_id")
    autocomplete_fields = ("customer", "package")

    def get_search_results(self, request, queryset, search_term):
        """A service is also found by the label every message and Zoho use for it: CS-<id>."""
        term = search_term.strip()
        if re.fullmatch(r"(?i)cs-\d+", term):
            return queryset.filter(pk=int(term[3:])), False
        return super().get_search_results(request, queryset, search_term)


class InvoiceLineFormSet(BaseInlineFormSet):
    """Refuse to save an invoice whose totals disagree with its lines, saying by how much."""

    def clean(self):
        super().clean()
        if any(self.errors):
            return
        amounts = [
            validation.line_amount(form.cleaned_data["quantity"], form.cleaned_data["unit_price"])
            for form in self.forms
            if form.cleaned_data and not form.cleaned_data.get("DELETE")
        ]
        invoice = self.instance
        problems = validation.invoice_totals_problems(
            subtotal=invoice.subtotal or Decimal("0.00"),
            tax_total=invoice.tax_total or Decimal("0.00"),
            total=invoice.total or Decimal("0.00"),
            line_amounts=amounts,
        )
        if problems:
            raise ValidationError(problems)


class InvoiceLineInline(admin.TabularInline):
    model = InvoiceLine
    formset = InvoiceLineFormSet
    fields = ("position", "description", "package", "quantity", "unit_price", "amount")
    readonly_fields = ("amount",)
    autocomplete_fields = ("package",)
    extra = 1


@admin.register(Invoice)
class InvoiceAdmin(ZohoSyncedAdmin):
    list_display = ("invoice_number", "customer", "kind", "origin", "status", "issued_on", "total", "currency_code")
    list_filter = ("kind", "origin", "status")
    list_select_related = ("customer",)
    search_fields = ("invoice_number", "customer__account_number", "customer__email", "zoho_id")
    autocomplete_fields = ("customer", "service")
    inlines = (InvoiceLineInline,)


@admin.register(Payment)
class PaymentAdmin(ZohoSyncedAdmin):
    list_display = ("reference", "customer", "invoice", "amount", "currency_code", "method", "status", "paid_at")
    list_filter = ("status", "method")
    list_select_related = ("customer", "invoice")
    search_fields = ("reference", "customer__account_number", "invoice__invoice_number", "zoho_id")
    autocomplete_fields = ("customer", "invoice")


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows written by the sync alone: shown, never added, changed or deleted here."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(SyncLog)
class SyncLogAdmin(ReadOnlyAdmin):
    """Read-only: the log is append-only, written by the sync engine alone."""

    list_display = ("created_at", "entity", "record", "action", "status", "short_message", "error_kind",
                    "http_status", "zoho_code")
    list_filter = ("status", "entity", "action", "error_kind", "direction")
    search_fields = ("=object_pk", "object_repr", "=zoho_id", "=run_id", "message", "zoho_message")
    list_per_page = 100
    show_full_result_count = False


    @admin.display(description="Record", ordering="object_pk")
    def record(self, obj):
        return obj.object_repr or obj.object_pk

    @admin.display(description="Message")
    def short_message(self, obj):
        text = obj.zoho_message or obj.message
        return format_html('<span title="{}">{}</span>', text, Truncator(text).chars(90))


@admin.register(FailedSyncLog)
class FailedSyncLogAdmin(SyncLogAdmin):
    list_filter = ("entity", "error_kind", "action")


@admin.register(SyncRun)
class SyncRunAdmin(ReadOnlyAdmin):
    """Read-only: every backfill, retry and triggered push as it ran (or runs); a silent one shows as dead."""

    list_display = ("started_at", "kind", "state", "entities", "records", "api_calls", "rate_limited",
                    "exit_code", "finished_at", "host", "pid", "short_run_id")
    list_filter = ("kind", "status")
    search_fields = ("=run_id", "host", "stop_reason", "error")
    list_per_page = 100
    show_full_result_count = False


    @admin.display(description="State", ordering="status")
    def state(self, obj):
        return obj.state_label

    @admin.display(description="Run", ordering="run_id")
    def short_run_id(self, obj):
        return obj.run_id[:12]


@admin.register(ApiUsage)
class ApiUsageAdmin(ReadOnlyAdmin):
    """Calls made to Zoho per UTC day and endpoint (ids left out), counted by every process."""

    list_display = ("day", "endpoint", "calls", "organization_id")
    list_filter = ("day",)
    search_fields = ("endpoint",)
    date_hierarchy = "day"
    show_full_result_count = False
