"""EntitySpec: everything that differs between entities, as data. SPECS is the one list, in dependency order.

Commands take their --entity choices from it, the engine its loop, the admin its counts. A new entity is one
spec here, its payload functions, its remote functions and its model: no `if spec.name == ...` elsewhere.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from django.db.models import DecimalField, Max, OuterRef, Prefetch, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce

from zoho_sync.client import codes
from zoho_sync.conf import get_sync_settings
from zoho_sync.models import Customer, CustomerService, Invoice, InvoiceLine, Payment, ServicePackage
from zoho_sync.sync import inbound, payloads, remote
from zoho_sync.sync.errors import BadZohoValue

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EntitySpec:
    name: str  # in logs, the CLI and SyncLog.entity
    model: type
    zoho_entity: str  # the Zoho resource, for the sync log
    id_field: str  # the key of the Zoho id in the created record
    list_path: str  # the list endpoint a backfill reads to build its index of existing records
    list_key: str
    remote_key: Callable[[dict], str]  # natural key of a listed Zoho record
    local_key: Callable[[Any], str]  # natural key of a local record (same value when they are the same record)
    to_zoho: Callable[..., dict]  # the request body (pure); remote functions add only what Zoho alone knows
    fingerprint: Callable[[Any], dict]  # what, when changed, must be sent again
    create: Callable[..., dict]
    update: Callable[..., str]
    find: Callable[..., dict | None]  # one lookup by natural key, when an earlier create may have landed
    depends_on: tuple[tuple[str, str], ...] = ()  # (attribute, spec name) that must have a Zoho id first
    skip_reason: Callable[[Any], str | None] = lambda obj: None
    prepare: Callable[[QuerySet], QuerySet] = lambda qs: qs  # select_related and annotations for the payloads
    label: Callable[[Any], str] = str  # the record as people know it
    extra_create_calls: Callable[[Any], int] = lambda obj: 0  # calls a create makes besides the POST (dry run)
    extra_update_calls: Callable[[Any], int] = lambda obj: 0  # calls an update makes besides the PUT (dry run)
    duplicate_codes: tuple[str, ...] = ()  # Zoho's answers meaning "you have one with this key already"
    # Whether sync may change the Zoho record after it exists: a record linked to one Zoho already had is brought
    # up to date when it may (every entity may today; payments are updated with PUT /payments/{id}, §3.8).
    updatable: bool = True
    # The reverse direction: from a Zoho record to the local fields Zoho owns ({} when it owns none), applied by
    # the pull step (sync/pull.py).
    from_zoho: Callable[[dict, Any], dict] | None = None
    # Called with Zoho's answer to a create (or to an update that answers one, ctx.answer): a payment's answer
    # says the balance of each invoice it paid.
    on_created: Callable[[dict], None] | None = None

    def payload(self, obj, *, today: date) -> dict:
        return self.to_zoho(obj, today=today)


def excluded_account_types() -> tuple[str, ...]:
    return get_sync_settings().excluded_account_types


def _excluded(customer) -> str | None:
    if customer.account_type in excluded_account_types():
        return f"Account type {customer.account_type} is excluded from sync (SYNC_EXCLUDED_ACCOUNT_TYPES)."
    return None


def _customer_skip(customer) -> str | None:
    return _excluded(customer)


def _service_skip(service) -> str | None:
    if reason := _excluded(service.customer):
        return reason
    if service.status == CustomerService.Status.PENDING:
        return "The service is not active yet; it is pushed when it is activated."
    if not service.zoho_id and service.status in (CustomerService.Status.CANCELLED, CustomerService.Status.SUSPENDED):
        return f"The service is {service.status} and never reached Zoho; there is nothing to bill there."
    return None


def _invoice_skip(invoice) -> str | None:
    if reason := _excluded(invoice.customer):
        return reason
    if invoice.kind == Invoice.Kind.SUBSCRIPTION_PERIOD:
        return "Zoho bills subscription periods itself; pushing this invoice would bill the customer twice."
    if invoice.origin == Invoice.Origin.ZOHO:
        return "The invoice was created by Zoho and is mirrored here."
    if invoice.status == Invoice.Status.DRAFT:
        return "Draft invoices are pushed once issued."
    if not invoice.zoho_id and invoice.status == Invoice.Status.VOID:
        return "The invoice was voided before it reached Zoho."
    return None


def _payment_skip(payment) -> str | None:
    if reason := _excluded(payment.customer):
        return reason
    if payment.origin == Payment.Origin.ZOHO:
        return "The payment was recorded in Zoho and is mirrored here."
    if payment.status != Payment.Status.COMPLETED and not payment.zoho_id:
        return f"The payment is {payment.status}; only completed payments are recorded in Zoho."
    if payment.invoice_id and payment.invoice.kind == Invoice.Kind.SUBSCRIPTION_PERIOD:
        return ("It settles a subscription period billed here, which Zoho never invoiced: recording it in Zoho "
                "would turn into credit against Zoho's next invoice.")
    return None


def _prepare_services(qs: QuerySet) -> QuerySet:
    last_period = Invoice.objects.filter(service=OuterRef("pk"), kind=Invoice.Kind.SUBSCRIPTION_PERIOD)
    return qs.select_related("customer", "package").annotate(
        last_period_end=Subquery(last_period.values("service").annotate(end=Max("period_end")).values("end")[:1])
    )


def _prepare_payments(qs: QuerySet) -> QuerySet:
    earlier = Payment.objects.filter(invoice=OuterRef("invoice"), status=Payment.Status.COMPLETED,
                                     pk__lt=OuterRef("pk"))
    paid = Subquery(earlier.values("invoice").annotate(total=Sum("amount")).values("total")[:1])
    zero = Value(Decimal("0.00"), output_field=DecimalField(max_digits=12, decimal_places=2))
    return qs.select_related("customer", "invoice").annotate(paid_before=Coalesce(paid, zero))


CUSTOMER = EntitySpec(
    name="customer", model=Customer, zoho_entity="customer", id_field="customer_id",
    list_path="/customers", list_key="customers",
    remote_key=lambda r: payloads.account_number_of(r.get("display_name", "")),
    local_key=lambda c: c.account_number.casefold(),
    to_zoho=payloads.customer_to_zoho, fingerprint=payloads.customer_to_zoho,
    create=remote.customer_create, update=remote.customer_update, find=remote.customer_find,
    skip_reason=_customer_skip, label=lambda c: c.account_number, duplicate_codes=(codes.DUPLICATE_CUSTOMER.name,),
)
SERVICE_PACKAGE = EntitySpec(
    name="service_package", model=ServicePackage, zoho_entity="plan", id_field="plan_code",
    list_path="/plans", list_key="plans", remote_key=lambda r: str(r.get("plan_code", "")).casefold(),
    local_key=lambda p: p.plan_code.casefold(),
    to_zoho=payloads.plan_to_zoho, fingerprint=payloads.package_fingerprint_fields,
    create=remote.plan_create, update=remote.plan_update, find=remote.plan_find, label=lambda p: p.plan_code,
    extra_create_calls=lambda p: 0 if p.zoho_product_id else 1,  # create the product (its list is cached)
    duplicate_codes=(codes.DUPLICATE_PLAN_CODE.name,),
)
CUSTOMER_SERVICE = EntitySpec(
    name="customer_service", model=CustomerService, zoho_entity="subscription", id_field="subscription_id",
    list_path="/subscriptions", list_key="subscriptions", remote_key=lambda r: str(r.get("reference_id", "")),
    local_key=payloads.subscription_reference,
    to_zoho=payloads.subscription_to_zoho, fingerprint=payloads.subscription_fingerprint_fields,
    create=remote.subscription_create, update=remote.subscription_update, find=remote.subscription_find,
    depends_on=(("customer", "customer"), ("package", "service_package")),
    skip_reason=_service_skip, prepare=_prepare_services, label=payloads.subscription_reference,
    from_zoho=inbound.subscription_from_zoho,
)
INVOICE = EntitySpec(
    name="invoice", model=Invoice, zoho_entity="invoice", id_field="invoice_id",
    list_path="/invoices", list_key="invoices", remote_key=lambda r: str(r.get("number") or r.get("invoice_number")),
    local_key=lambda i: i.invoice_number,
    to_zoho=payloads.invoice_to_zoho, fingerprint=payloads.invoice_fingerprint_fields,
    create=remote.invoice_create, update=remote.invoice_update, find=remote.invoice_find,
    depends_on=(("customer", "customer"),), skip_reason=_invoice_skip,
    prepare=lambda qs: qs.select_related("customer", "service").prefetch_related(
        Prefetch("lines", queryset=InvoiceLine.objects.select_related("package"))),
    label=lambda i: i.invoice_number, duplicate_codes=(codes.DUPLICATE_INVOICE_NUMBER.name,),
    from_zoho=inbound.invoice_from_zoho,
)
PAYMENT = EntitySpec(
    name="payment", model=Payment, zoho_entity="payment", id_field="payment_id",
    list_path="/payments", list_key="payments", remote_key=lambda r: str(r.get("reference_number", "")),
    local_key=lambda p: p.reference,
    to_zoho=payloads.payment_to_zoho, fingerprint=payloads.payment_fingerprint_fields,
    create=remote.payment_create, update=remote.payment_update, find=remote.payment_find,
    depends_on=(("customer", "customer"), ("invoice", "invoice")), skip_reason=_payment_skip,
    prepare=_prepare_payments, label=lambda p: p.reference,
    extra_create_calls=lambda p: 0 if p.invoice_id else 1,  # find the customer's open invoices
    # read Zoho's payment first (an application that grows reads its invoice's balance too: not known offline)
    extra_update_calls=lambda p: 1,
    from_zoho=inbound.payment_from_zoho, on_created=lambda record: invoices_paid_by(record),
)

SPECS: tuple[EntitySpec, ...] = (CUSTOMER, SERVICE_PACKAGE, CUSTOMER_SERVICE, INVOICE, PAYMENT)
BY_NAME = {spec.name: spec for spec in SPECS}
# The --entity names of every command: the business's names for its records, as the admin and zoho_import name
# them (the spec's name in the plural), and the spec each means. Zoho's names for two of them (plans,
# subscriptions), which the push commands used before, are accepted as aliases; so is each spec's own name.
ENTITY_CHOICES = {f"{spec.name}s": spec for spec in SPECS}
ENTITY_ALIASES = {"plans": "service_packages", "subscriptions": "customer_services",
                  **{spec.name: f"{spec.name}s" for spec in SPECS}}


def entity_name(value: str) -> str:
    """The one name of the entity an --entity value names (an alias, any case), or the value unchanged when it
    names none, for argparse's choices to refuse with the list of names."""
    key = value.strip().casefold().replace("-", "_").replace(" ", "_")
    return key if key in ENTITY_CHOICES or key == "all" else ENTITY_ALIASES.get(key, value)


def entity_argument(*, with_all: bool = True, required: bool = False, what: str = "") -> dict:
    """The keyword arguments of every command's --entity option: choices, aliases and help from SPECS alone.
    `parser.add_argument("--entity", **specs.entity_argument())`."""
    names = [*ENTITY_CHOICES, *(["all"] if with_all else [])]
    old = ", ".join(f"{alias} for {name}" for alias, name in ENTITY_ALIASES.items() if alias.endswith("s"))
    default = "" if required or not with_all else " (default: all)"
    text = f"{what or 'The records to work on'}: {', '.join(names)}{default}. Also accepted: {old}."
    kwargs = {"type": entity_name, "choices": names, "metavar": "ENTITY", "help": text}
    return {**kwargs, "required": True} if required else {**kwargs, "default": "all" if with_all else None}


def invoices_paid_by(payment: dict) -> None:
    """Our payment landed: Zoho's answer gives the balance of each invoice it paid, which Zoho owns; the local
    invoices take it (balance, and paid or partially paid) without a call and without queueing a push (neither is
    in an invoice's fingerprint). Zoho's modified time is not known here: the next pull sets it."""
    for entry in payment.get("invoices") or []:
        try:
            balance = inbound.zoho_number(entry.get("balance_amount"), inbound.column(Invoice, "balance_due"),
                                          key="invoices[].balance_amount")
            total = inbound.zoho_number(entry.get("invoice_amount"), inbound.column(Invoice, "total"),
                                        key="invoices[].invoice_amount")
        except BadZohoValue as bad:  # the payment landed; this invoice's balance is left to the next pull
            bad.record = f"payment {payment.get('payment_id')}, invoice {entry.get('invoice_id')}"
            logger.warning("%s", bad)
            continue
        if balance is None or not entry.get("invoice_id"):
            continue
        status = "paid" if balance <= 0 else ("partially_paid" if total is not None and balance < total else None)
        rows = Invoice.objects.filter(zoho_id=str(entry["invoice_id"])).exclude(status__in=("void", "draft"))
        rows.update(balance_due=balance, **({"status": status} if status else {}))


def for_model(model: type) -> EntitySpec | None:
    return next((spec for spec in SPECS if spec.model is model), None)


def specs_for(entity: str) -> tuple[EntitySpec, ...]:
    """The specs an --entity value names ('all' for every one), in dependency order."""
    if entity == "all":
        return SPECS
    return (ENTITY_CHOICES[entity_name(entity)],)
