"""Customer services: Zoho's subscriptions (`/subscriptions`).

Everything that is particular to this entity lives here: its payload, its remote calls, the fields Zoho
owns and how they are pulled, and its spec (SPEC), which the generic code reads through the registry.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.db.models import DateField, Max, OuterRef, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce

from zoho_sync.entities.base import EntitySpec, Events, excluded
from zoho_sync.entities.customers import customer_column
from zoho_sync.entities.plans import PACKAGE_REF
from zoho_sync.entities.reconciling import OURS, Field, Reconcile, text
from zoho_sync.models import CustomerService, Invoice
from zoho_sync.tabular.columns import Column, Ref
from zoho_sync.tabular.entity import ImportEntity
from zoho_sync.wire.errors import BadZohoValue
from zoho_sync.wire.inbound import modified_time, zoho_date, zoho_number, zoho_time
from zoho_sync.wire.remote import SyncContext, match_one


# --- customer service: a subscription -----------------------------------------------------------------------
def subscription_reference(service) -> str:
    return service.zoho_reference_id


def subscription_start(service, *, today: date) -> date:
    """Where Zoho's billing starts: the day after the last period billed here, so no period is billed twice.

    `last_period_end` is an annotation (the latest local subscription-period invoice). With none, Zoho starts
    billing from its activation, or today when that is past: periods never billed here are not back-billed.
    """
    last_end = getattr(service, "last_period_end", None)
    if last_end:
        return last_end + timedelta(days=1)
    activated = service.activated_at.date() if service.activated_at else today
    return max(activated, today)


def subscription_to_zoho(service, *, today: date | None = None) -> dict[str, Any]:
    return {
        "customer_id": service.customer.zoho_id,
        "plan": {"plan_code": service.package.plan_code, "quantity": service.quantity},
        "reference_id": subscription_reference(service),
        "auto_collect": False,  # offline subscription: paid by invoice, as the business bills today
        "starts_at": subscription_start(service, today=today or date.today()).isoformat(),
    }


def subscription_fingerprint_fields(service) -> dict[str, Any]:
    return {"plan_code": service.package.plan_code, "quantity": service.quantity,
            "cancelled": service.status == "cancelled"}


# --- customer services: subscriptions -----------------------------------------------------------------------
def subscription_create(ctx: SyncContext, service, payload: dict) -> dict:
    subscription = ctx.client.post("/subscriptions", json=payload)["subscription"]
    ctx.notes.append(f"Zoho bills it next on {subscription.get('next_billing_at') or payload['starts_at']}.")
    return subscription


def subscription_update(ctx: SyncContext, service, payload: dict) -> str:
    # Zoho's answer is kept (ctx.answer): the push applies it, so the event it causes is an echo (sync/pull.py).
    if service.status == "cancelled":
        answer = ctx.client.post(f"/subscriptions/{service.zoho_id}/cancel", params={"cancel_at_end": "false"},
                                 idempotent=True)
        ctx.answer = answer.get("subscription") if isinstance(answer, dict) else None
        return "cancel"
    answer = ctx.client.put(f"/subscriptions/{service.zoho_id}", json={"plan": payload["plan"]})
    ctx.answer = answer.get("subscription") if isinstance(answer, dict) else None
    return "update"


def subscription_find(ctx: SyncContext, service) -> dict | None:
    records = ctx.client.paginate("/subscriptions", "subscriptions", params={"customer_id": service.customer.zoho_id})
    return match_one(list(records), "reference_id", subscription_reference(service), "subscriptions")


# Zoho's subscription statuses (§3.6) in the local vocabulary; a status not listed leaves the local one alone.
SUBSCRIPTION_STATUS = {"live": "active", "non_renewing": "active", "cancelled": "cancelled", "expired": "expired",
                       "unpaid": "suspended", "paused": "suspended", "trial": "active", "future": "pending",
                       "dunning": "active"}


# --- what Zoho owns, per entity: {field: value} for the fields the record carries --------------------------
def subscription_from_zoho(remote: dict, current) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "current_term_starts_on": zoho_date(remote.get("current_term_starts_at")),
        "current_term_ends_on": zoho_date(remote.get("current_term_ends_at")),
        "next_billing_on": zoho_date(remote.get("next_billing_at")),
    }
    if remote.get("child_invoice_id"):
        fields["zoho_child_invoice_id"] = str(remote["child_invoice_id"])[:64]
    status = SUBSCRIPTION_STATUS.get(str(remote.get("status", "")))
    if status and status != "pending":
        fields["status"] = status
        if status == "cancelled" and not current.cancelled_at:
            ended = zoho_time(remote.get("cancelled_at") or remote.get("expires_at")) or modified_time(remote)
            fields["cancelled_at"] = ended or datetime.now(UTC)
        if status == "active" and not current.activated_at:
            fields["activated_at"] = zoho_time(remote.get("activated_at")) or datetime.now(UTC)
    return fields


def _service_skip(service) -> str | None:
    if reason := excluded(service.customer):
        return reason
    if service.status == CustomerService.Status.PENDING:
        return "The service is not active yet; it is pushed when it is activated."
    if not service.zoho_id and service.status in (CustomerService.Status.CANCELLED, CustomerService.Status.SUSPENDED):
        return f"The service is {service.status} and never reached Zoho; there is nothing to bill there."
    return None


def _prepare_services(qs: QuerySet) -> QuerySet:
    last_period = Invoice.objects.filter(service=OuterRef("pk"), kind=Invoice.Kind.SUBSCRIPTION_PERIOD)
    return qs.select_related("customer", "package").annotate(
        last_period_end=Subquery(last_period.values("service").annotate(end=Max("period_end")).values("end")[:1])
    )


def _link_period_invoice(service) -> None:
    """The invoice of the service's current term, mirrored before the subscription's event arrived: it becomes
    the service's period invoice (an UPDATE: a mirror is never pushed)."""
    if not service.zoho_child_invoice_id:
        return
    start, end = service.current_term_starts_on, service.current_term_ends_on
    Invoice.objects.filter(zoho_id=service.zoho_child_invoice_id, origin=Invoice.Origin.ZOHO,
                           service__isnull=True, customer_id=service.customer_id).update(
        service=service, kind=Invoice.Kind.SUBSCRIPTION_PERIOD,
        period_start=Coalesce(Value(start, output_field=DateField()), "issued_on"),
        period_end=end if start and end and end >= start else None)


def _subscription_may_differ(service, listed: dict) -> bool:
    """Zoho's subscription listing names the plan and the amount (price x quantity), not the plan code or the
    quantity: when either differs from ours (or is not there), the record is read to compare them."""
    if text(listed.get("plan_name")) != text(service.package.name):
        return True
    try:
        amount = zoho_number(listed.get("amount"), key="amount")
    except BadZohoValue:
        return True
    return amount is None or amount != service.package.price * service.quantity


# --- zoho_import: the columns of its file -------------------------------------------------------------
SERVICE_REF = Ref(CustomerService, "reference", "customer service with reference", only=("id", "customer_id"))


CUSTOMER_SERVICES = ImportEntity(
    name="customer_services", noun="customer service", model=CustomerService, key="reference",
    columns=(
        Column("reference", "reference", "text", "SVC-0001", required=True,
               help="the natural key: your own reference for the service"),
        customer_column(),
        Column("plan_code", "package", "ref", "FIBER-100", required=True, help="the service package's plan code",
               ref=PACKAGE_REF),
        Column("status", "status", "choice", "active",
               help="active needs activated_at, cancelled needs cancelled_at"),
        Column("quantity", "quantity", "integer", "1"),
        Column("activated_at", "activated_at", "datetime", "2025-01-15T09:00:00+00:00"),
        Column("cancelled_at", "cancelled_at", "datetime", ""),
    ),
)


SPEC = EntitySpec(
    name="customer_service", order=30, model=CustomerService, zoho_entity="subscription", id_field="subscription_id",
    list_path="/subscriptions", list_key="subscriptions", remote_key=lambda r: str(r.get("reference_id", "")),
    local_key=subscription_reference,
    remote_name=lambda r: r.get("reference_id"),
    to_zoho=subscription_to_zoho, fingerprint=subscription_fingerprint_fields,
    create=subscription_create, update=subscription_update, find=subscription_find,
    depends_on=(("customer", "customer"), ("package", "service_package")),
    skip_reason=_service_skip, prepare=_prepare_services, label=subscription_reference,
    from_zoho=subscription_from_zoho,
    events=Events(data_key="subscription", read_path="/subscriptions/{}", prefixes=("subscription_",),
                  types=("billing_date_changed", "trial_expiring")),
    after_pull=_link_period_invoice,
    failure_label="'CS-' || id", web_app_path="subscriptions", api_resources=("subscriptions",),
    aliases=("subscriptions",),
    reconcile=Reconcile(
        fields=(Field("plan_code", lambda s: s.package.plan_code, "plan.plan_code", OURS),
                Field("quantity", lambda s: s.quantity, "plan.quantity", OURS, column="quantity")),
        zoho_owned=(("status", "status"), ("current_term_ends_on", "status"), ("next_billing_on", "status")),
        read_when=_subscription_may_differ),
    importing=CUSTOMER_SERVICES,
)
