"""The billing records' admin: the sync columns and filters, the record page's sync banner and history, "Push to
Zoho now", and search by the labels the product prints. Display and actions only: actions call services."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q
from django.forms.models import BaseInlineFormSet
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.views.decorators.http import require_POST

from zoho_sync import entities, selectors, services, validation
from zoho_sync.admin.base import (
    CappedCountAdmin,
    can_sync,
    queued_message,
    short_error,
    state_badge,
    sync_since,
)
from zoho_sync.client.errors import ZohoCredentialsError, ZohoError
from zoho_sync.conf import ZohoConfigurationError, get_sync_settings, zoho_web_url
from zoho_sync.models import (
    Customer,
    CustomerService,
    Invoice,
    InvoiceLine,
    Payment,
    ServicePackage,
    SyncState,
    ZohoSyncedModel,
)
from zoho_sync.status import status_banners

HISTORY_ROWS = 10


def synclog_url(entity: str, pk) -> str:
    return reverse("admin:zoho_sync_synclog_changelist") + f"?entity={entity}&object_pk={pk}"


def report_push(request, counts: dict[str, int]) -> None:
    """One message per outcome, in the same words as the commands and the dashboard."""
    if counts.get("queued"):
        queued_message(request, f"{counts['queued']} records queued; they are pushed in the background.",
                       waiting=f"{counts['queued']} records queued; they are pushed in the background.",
                       what="the queued pushes")
    if counts.get(services.QUEUE_DOWN):
        messages.error(request, f"{counts[services.QUEUE_DOWN]} record(s) could not be queued: the task queue is "
                                "unreachable. They stay pending; the 15-minute \"zoho: push pending\" schedule "
                                "pushes them once it is back, or select fewer to push them now.")
    if counts.get(services.QUOTA_WAIT):
        until = datetime.fromtimestamp(counts.get(services.QUOTA_UNTIL, 0), UTC)
        messages.warning(request, f"{counts[services.QUOTA_WAIT]} record(s) wait for Zoho's daily API quota, used "
                                  f"up: waiting for the quota until {until:%H:%M} UTC, then pushed by the schedules "
                                  "(or push them again then).")
    if counts.get(services.LOCKED_OUT):
        until = datetime.fromtimestamp(counts.get(services.LOCKOUT_UNTIL, 0), UTC)
        messages.warning(request, f"{counts[services.LOCKED_OUT]} record(s) not pushed: Zoho locked us out for "
                                  f"calling too fast, until {until:%H:%M:%S} UTC. They are failed, retrying then.")
    if counts.get(SyncState.SYNCED):
        messages.success(request, f"{counts[SyncState.SYNCED]} record(s) pushed to Zoho.")
    if counts.get(SyncState.SKIPPED):
        messages.info(request, f"{counts[SyncState.SKIPPED]} record(s) skipped by the sync rules (see why on each "
                               "record).")
    failed = counts.get(SyncState.NEEDS_PERSON, 0) + counts.get(SyncState.RETRYING, 0)
    if failed:
        messages.warning(request, format_html(
            '{} record(s) failed ({} need a person, {} will be retried): see the <a href="{}">failed records</a>.',
            failed, counts.get(SyncState.NEEDS_PERSON, 0), counts.get(SyncState.RETRYING, 0),
            reverse("admin:zoho_sync_syncfailure_changelist")))
    waiting = counts.get(SyncState.WAITING, 0) + counts.get(SyncState.BLOCKED, 0)
    if waiting:
        messages.warning(request, f"{waiting} record(s) wait for a record they depend on "
                                  f"({counts.get(SyncState.BLOCKED, 0)} blocked by one that needs a person); each "
                                  "record says which.")
    if counts.get("busy") or counts.get(SyncState.PENDING):
        messages.info(request, f"{counts.get('busy', 0) + counts.get(SyncState.PENDING, 0)} record(s) were being "
                               "pushed by another worker or changed meanwhile; they are pushed with their latest "
                               "data shortly.")


def push_selection(request, selection: dict[str, list[int]]) -> None:
    """Push and say what happened, as a message on the page: never an error page, whatever Zoho answers."""
    try:
        counts = services.sync_selection(selection)
    except ZohoCredentialsError as exc:
        messages.error(request, format_html(
            'Zoho refused our credentials: {} The record is failed, needs a person (see the <a href="{}">failed '
            "records</a> and the sync log); once the settings are fixed, push it again.", str(exc),
            reverse("admin:zoho_sync_syncfailure_changelist")))
        return
    except ZohoConfigurationError as exc:
        messages.error(request, f"Zoho is not configured: {exc}")
        return
    except ZohoError as exc:  # the engine records every failure on its record; this is a last safety net
        messages.error(request, f"Zoho could not be reached for the push: {exc}")
        return
    report_push(request, counts)


def sync_heading(obj) -> str:
    """The heading of a record page's collapsed "Zoho sync" section: its summary line, read without opening it."""
    if obj is None:
        return "Zoho sync"
    parts = [f"{obj.sync_state.label}{sync_since(obj)}",
             f"Zoho id {obj.zoho_id}" if obj.zoho_id else "not in Zoho yet"]
    if obj.sync_attempts:
        parts.append(f"{obj.sync_attempts} attempt{'s' if obj.sync_attempts != 1 else ''}")
    if obj.last_synced_at:
        parts.append(f"last pushed {timezone.localtime(obj.last_synced_at):%Y-%m-%d %H:%M}")
    return "Zoho sync: " + " · ".join(parts)


class ZohoSyncedAdmin(CappedCountAdmin):
    """Base admin for synced models: the sync columns, filter, record page, read-only bookkeeping and actions."""

    sync_columns = ("sync", "zoho_id")
    sync_readonly = ZohoSyncedModel.BOOKKEEPING
    actions = ["push_now", "mark_for_sync", "skip_selected"]
    list_per_page = 50
    change_form_template = "admin/zoho_sync/synced_change_form.html"
    # Searched first, for equality (their indexes answer at once): the labels the product prints. Only a term
    # none of them matches falls back to the slower partial search over `search_fields`.
    exact_search_fields: tuple[str, ...] = ("zoho_id",)

    @property
    def spec(self):
        return entities.for_model(self.model)

    def has_sync_permission(self, request) -> bool:
        return can_sync(request)

    def get_list_display(self, request):
        return (*super().get_list_display(request), *self.sync_columns)

    def get_list_filter(self, request):
        return ("sync_status", "last_error_kind", *super().get_list_filter(request))

    def get_readonly_fields(self, request, obj=None):
        return (*super().get_readonly_fields(request, obj), *self.sync_readonly)

    def get_fieldsets(self, request, obj=None):
        own = [f for f in self.get_fields(request, obj) if f not in self.sync_readonly]
        return [(None, {"fields": own}),
                (sync_heading(obj), {"fields": self.sync_readonly, "classes": ["collapse"]})]

    def exact_terms(self, term: str) -> Q | None:
        variants = {term, term.upper(), term.lower()}
        query = Q()
        for field in self.exact_search_fields:
            for variant in variants:
                query |= Q(**{field: variant})
        return query or None

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        exact = self.exact_terms(term) if term else None
        if exact is not None:
            found = queryset.filter(exact)
            if found.exists():
                return found, False
        return super().get_search_results(request, queryset, search_term)

    @admin.display(description="Sync", ordering="sync_status")
    def sync(self, obj):
        """The state in the one vocabulary (with its retry time) and the short error under it."""
        badge = state_badge(obj.sync_state, title=obj.last_sync_error, suffix=sync_since(obj))
        if obj.last_sync_error and obj.sync_state != SyncState.SYNCED:
            return format_html("{}<br>{}", badge, short_error(obj.last_sync_error))
        return badge

    # --- actions: every one needs "Can sync to Zoho" --------------------------------------------------------
    @admin.action(description="Push selected to Zoho now", permissions=["sync"])
    def push_now(self, request, queryset):
        push_selection(request, {self.spec.name: list(queryset.values_list("pk", flat=True))})

    @admin.action(description="Mark selected pending (sent by the next scheduled push)", permissions=["sync"])
    def mark_for_sync(self, request, queryset):
        count = services.sync_mark_pending(queryset=queryset)
        self.message_user(request, f"{count} record(s) queued for sync with Zoho: the next scheduled push (every 15 "
                                   "minutes) or backfill sends them.", messages.SUCCESS)

    @admin.action(description="Skip selected failures (not pushed until they change)", permissions=["sync"])
    def skip_selected(self, request, queryset):
        count = services.sync_skip(entity=self.spec.name, pks=list(queryset.values_list("pk", flat=True)),
                                   by=request.user.get_username())
        self.message_user(request, f"{count} record(s) skipped; a record that is not failed, waiting or blocked, "
                                   "or that a worker is pushing, is left as it is.", messages.SUCCESS)

    # --- the record's page ---------------------------------------------------------------------------------
    def get_urls(self):
        opts = self.model._meta
        push = self.admin_site.admin_view(require_POST(self.push_view))
        return [path("<path:object_id>/push/", push, name=f"{opts.app_label}_{opts.model_name}_push"),
                *super().get_urls()]

    def push_view(self, request, object_id):
        if not self.has_sync_permission(request):
            raise PermissionDenied
        obj = get_object_or_404(self.model, pk=object_id)
        push_selection(request, {self.spec.name: [obj.pk]})
        opts = self.model._meta
        return HttpResponseRedirect(reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk]))

    def change_view(self, request, object_id, form_url="", extra_context=None):
        obj = self.get_object(request, object_id)
        extra = dict(extra_context or {})
        if obj is not None:
            spec = self.spec
            opts = self.model._meta
            extra["sync"] = {
                "state": obj.sync_state,
                "badge": state_badge(obj.sync_state, suffix=sync_since(obj)),
                "error": obj.last_sync_error,
                "kind": obj.get_last_error_kind_display() if obj.last_error_kind else "",
                "record": obj,
                "history": selectors.sync_log_of(spec.name, obj.pk, limit=HISTORY_ROWS),
                "history_url": synclog_url(spec.name, obj.pk),
                "zoho_url": zoho_web_url(spec.web_app_path, obj.zoho_id or ""),
                "can_sync": self.has_sync_permission(request),
                "push_url": reverse(f"admin:{opts.app_label}_{opts.model_name}_push", args=[obj.pk]),
                "banners": status_banners(),
            }
        return super().change_view(request, object_id, form_url, extra)

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        settings = get_sync_settings()
        if settings.triggers_enabled and not self.spec.skip_reason(obj):
            queued_message(request, f"Its push to Zoho is queued and starts about {settings.debounce_seconds:g} s "
                                    "after the save.", waiting="Its push to Zoho is queued.", what="the push")


@admin.register(Customer)
class CustomerAdmin(ZohoSyncedAdmin):
    list_display = ("account_number", "name", "email", "status")
    list_filter = ("account_type", "status")
    search_fields = ("account_number", "email", "company_name", "last_name", "first_name")
    exact_search_fields = ("account_number", "email", "zoho_id")


@admin.register(ServicePackage)
class ServicePackageAdmin(ZohoSyncedAdmin):
    list_display = ("name", "plan_code", "price", "interval", "interval_unit", "is_active")
    list_filter = ("is_active", "interval_unit")
    search_fields = ("name", "plan_code")
    exact_search_fields = ("plan_code", "zoho_id", "zoho_product_id")
    sync_readonly = (*ZohoSyncedAdmin.sync_readonly, "zoho_product_id")


@admin.register(CustomerService)
class CustomerServiceAdmin(ZohoSyncedAdmin):
    list_display = ("__str__", "customer", "package", "status", "activated_at")
    list_filter = ("status", "package")
    list_select_related = ("customer", "package")
    search_fields = ("reference", "customer__account_number", "customer__email", "package__plan_code")
    exact_search_fields = ("reference", "zoho_id", "customer__account_number")
    autocomplete_fields = ("customer", "package")

    def exact_terms(self, term):
        """A service is also found by the label every message and Zoho use for it: CS-<id>."""
        if re.fullmatch(r"(?i)cs-\d+", term):
            return Q(pk=int(term[3:]))
        return super().exact_terms(term)


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
    list_display = ("invoice_number", "customer", "kind", "status", "issued_on", "total")
    list_filter = ("kind", "origin", "status")
    list_select_related = ("customer",)
    search_fields = ("invoice_number", "customer__account_number", "customer__email")
    exact_search_fields = ("invoice_number", "zoho_id", "customer__account_number")
    autocomplete_fields = ("customer", "service")
    inlines = (InvoiceLineInline,)


@admin.register(Payment)
class PaymentAdmin(ZohoSyncedAdmin):
    list_display = ("reference", "customer", "invoice", "amount", "method", "status", "paid_at")
    list_filter = ("status", "method")
    list_select_related = ("customer", "invoice")
    search_fields = ("reference", "customer__account_number", "invoice__invoice_number")
    exact_search_fields = ("reference", "zoho_id", "invoice__invoice_number", "customer__account_number")
    autocomplete_fields = ("customer", "invoice")


def register_entity_admins() -> None:
    """Every entity whose spec gives its admin columns (spec.admin) and has no admin class above gets a
    ZohoSyncedAdmin with them: the sync columns, filters, actions and search come from the base class."""
    for spec in entities.SPECS:
        if spec.admin and spec.model not in admin.site._registry:
            options = {**spec.admin, "sync_readonly": (*ZohoSyncedAdmin.sync_readonly,
                                                       *spec.admin.get("sync_readonly", ()))}
            admin.site.register(spec.model, type(f"{spec.model.__name__}Admin", (ZohoSyncedAdmin,), options))


register_entity_admins()
