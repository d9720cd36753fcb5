"""Invoices: Zoho's invoices (`/invoices`), ours pushed, Zoho's own (a renewal's period) mirrored here.

Everything that is particular to this entity lives here: its payload, its remote calls, the fields Zoho
owns and how they are pulled, and its spec (SPEC), which the generic code reads through the registry.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Prefetch
from django.utils import timezone

from zoho_sync import validation
from zoho_sync.client import codes
from zoho_sync.entities.base import EntitySpec, Events, PullOutcome, excluded
from zoho_sync.entities.customers import customer_column
from zoho_sync.entities.plans import PACKAGE_REF, product_ensure
from zoho_sync.entities.reconciling import OURS, Field, Reconcile
from zoho_sync.entities.subscriptions import SERVICE_REF
from zoho_sync.models import Customer, CustomerService, Invoice, InvoiceLine, SyncStatus
from zoho_sync.muting import triggers_muted
from zoho_sync.tabular.columns import Column, Ref
from zoho_sync.tabular.entity import ImportEntity
from zoho_sync.tabular.hooks import EntityHooks, line_tuple
from zoho_sync.wire.errors import InvalidLocalData
from zoho_sync.wire.inbound import column, zoho_date, zoho_number
from zoho_sync.wire.payloads import drop_empty, money
from zoho_sync.wire.remote import SyncContext, match_one


# --- invoice ------------------------------------------------------------------------------------------------
def invoice_problems(invoice, lines) -> list[str]:
    from zoho_sync.validation import invoice_totals_problems

    return invoice_totals_problems(subtotal=invoice.subtotal, tax_total=invoice.tax_total, total=invoice.total,
                                   line_amounts=[line.amount for line in lines])


ONE_OFF_PRODUCT = "One-off charges"  # the Zoho product of invoice lines that sell no package of ours


def line_product_id(line, one_off_product_id: str | None) -> str | None:
    """Zoho requires a product on every invoice item: the package's own product, else the one-off product."""
    package = line.package if line.package_id else None
    return (package.zoho_product_id if package is not None else "") or one_off_product_id


def invoice_to_zoho(invoice, *, today: date | None = None, one_off_product_id: str | None = None) -> dict[str, Any]:
    """The invoice's body; `one_off_product_id` is filled in by the engine (the dry run shows it absent)."""
    lines = list(invoice.lines.all())
    if problems := invoice_problems(invoice, lines):
        raise InvalidLocalData(" ".join(problems))
    if invoice.tax_total:
        raise InvalidLocalData("Invoices with tax are not pushed yet: Zoho needs a tax id per line.")
    return drop_empty({
        "customer_id": invoice.customer.zoho_id,
        "invoice_number": invoice.invoice_number,
        "date": invoice.issued_on.isoformat(),
        "due_date": invoice.due_on.isoformat() if invoice.due_on else None,
        "notes": invoice.notes,
        "invoice_items": [
            drop_empty({"product_id": line_product_id(line, one_off_product_id), "name": line.description[:100],
                        "description": line.description, "price": money(line.unit_price),
                        "quantity": money(line.quantity)})
            for line in lines
        ],
    })


def invoice_fingerprint_fields(invoice) -> dict[str, Any]:
    payload = invoice_to_zoho(invoice)
    payload.pop("customer_id", None)
    for item in payload["invoice_items"]:
        item.pop("product_id", None)
    payload["void"] = invoice.status == "void"
    return payload


def one_off_product_id(ctx: SyncContext) -> str:
    """The Zoho product of invoice lines that sell no package of ours, created the first time it is needed."""
    return product_ensure(ctx, {"name": ONE_OFF_PRODUCT, "description": "One-off charges billed on "
                                "invoices (installations, equipment, visits)."})


def _invoice_body(ctx: SyncContext, invoice, payload: dict) -> dict:
    """The payload with every line's product filled in (the one-off product for lines selling no package)."""
    if all(item.get("product_id") for item in payload.get("invoice_items", [])):
        return payload
    product_id = one_off_product_id(ctx)
    items = [{**item, "product_id": item.get("product_id") or product_id} for item in payload["invoice_items"]]
    ctx.sent = {**payload, "invoice_items": items}
    return ctx.sent


# --- invoices -----------------------------------------------------------------------------------------------
def invoice_create(ctx: SyncContext, invoice, payload: dict) -> dict:
    body = _invoice_body(ctx, invoice, payload)
    created = ctx.client.post("/invoices", json=body, params={"ignore_auto_number_generation": "true"})
    record = created["invoice"]
    if invoice.status == "void":
        ctx.client.post(f"/invoices/{record['invoice_id']}/void", idempotent=True)
    return record


def invoice_update(ctx: SyncContext, invoice, payload: dict) -> str:
    if invoice.status == "void":
        ctx.client.post(f"/invoices/{invoice.zoho_id}/void", idempotent=True)
        return "cancel"
    ctx.client.put(f"/invoices/{invoice.zoho_id}", json=_invoice_body(ctx, invoice, payload))
    return "update"


def invoice_find(ctx: SyncContext, invoice) -> dict | None:
    records = ctx.client.paginate("/invoices", "invoices", params={"customer_id": invoice.customer.zoho_id})
    # Zoho's list answer names the number `number`, its other answers `invoice_number` (§12.6): accept both.
    return match_one(list(records), ("number", "invoice_number"), invoice.invoice_number, "invoices")


# Zoho's invoice statuses (§3.7): overdue and unpaid are still issued here.
INVOICE_STATUS = {"sent": "issued", "overdue": "issued", "unpaid": "issued", "partially_paid": "partially_paid",
                  "paid": "paid", "void": "void"}


def invoice_from_zoho(remote: dict, current) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    balance = zoho_number(remote.get("balance"), column(Invoice, "balance_due"), key="balance")
    if balance is not None:
        fields["balance_due"] = balance
    status = INVOICE_STATUS.get(str(remote.get("status", "")))
    total = zoho_number(remote.get("total"), column(Invoice, "total"), key="total")
    if status == "issued" and balance is not None and total is not None and Decimal("0") < balance < total:
        status = "partially_paid"  # Zoho says overdue (computed from the due date) whatever was paid
    if status and current.status != "draft":
        fields["status"] = status
    return fields


# --- the local mirror of a record Zoho created -----------------------------------------------------------------
def invoice_subscription_id(remote: dict) -> str:
    """The subscription a Zoho invoice bills, when it bills one (`subscriptions[]`, or `subscription_id`)."""
    for entry in remote.get("subscriptions") or []:
        if isinstance(entry, dict) and entry.get("subscription_id"):
            return str(entry["subscription_id"])
    return str(remote.get("subscription_id") or "")


def invoice_mirror(remote: dict) -> dict[str, Any]:
    """The fields of a local invoice mirroring one Zoho raised (origin Zoho); the caller adds customer and
    service. Totals as Zoho states them: the sum of the items, tax on top."""
    total = zoho_number(remote.get("total"), column(Invoice, "total"), key="total")
    subtotal = zoho_number(remote.get("sub_total"), column(Invoice, "subtotal"), key="sub_total")
    tax = zoho_number(remote.get("tax_total"), column(Invoice, "tax_total"), key="tax_total")
    total = Decimal("0.00") if total is None else total
    tax = Decimal("0.00") if tax is None else tax
    if subtotal is None or subtotal + tax != total:
        subtotal, tax = total - tax, tax
    return {
        "invoice_number": str(remote.get("invoice_number") or remote.get("number") or ""),
        "issued_on": zoho_date(remote.get("date") or remote.get("invoice_date")) or datetime.now(UTC).date(),
        "due_on": zoho_date(remote.get("due_date")),
        "currency_code": str(remote.get("currency_code") or "USD")[:3],
        "subtotal": subtotal, "tax_total": tax, "total": total,
        "status": INVOICE_STATUS.get(str(remote.get("status", "")), "issued"),
        "balance_due": zoho_number(remote.get("balance"), column(Invoice, "balance_due"), key="balance"),
    }


def invoice_mirror_lines(remote: dict) -> list[dict[str, Any]]:
    lines = []
    for position, item in enumerate(remote.get("invoice_items") or [], start=1):
        where = f"invoice_items[{position}]"
        quantity = zoho_number(item.get("quantity"), column(InvoiceLine, "quantity"), key=f"{where}.quantity")
        price_key = "price" if item.get("price") is not None else "rate"
        price = zoho_number(item.get(price_key), column(InvoiceLine, "unit_price"), key=f"{where}.{price_key}")
        quantity, price = quantity or Decimal("1"), price or Decimal("0")  # as before: none (or 0) sent
        zoho_number((quantity * price).quantize(Decimal("0.01")), column(InvoiceLine, "amount"),
                    key=f"{where} quantity x price")
        lines.append({"position": position, "description": str(item.get("name") or item.get("description") or
                                                                 "Zoho item")[:255],
                      "quantity": quantity, "unit_price": price})
    return lines


def _invoice_skip(invoice) -> str | None:
    if reason := excluded(invoice.customer):
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


def _mirror_invoice(remote: dict, zoho_id: str, modified: datetime) -> PullOutcome:
    fields = invoice_mirror(remote)
    number = fields["invoice_number"]
    customer = Customer.objects.filter(zoho_id=str(remote.get("customer_id") or "")).first()
    if customer is None:
        return PullOutcome("invoice", None, "unknown", f"invoice {number or zoho_id}: its customer is not one of "
                                                       "ours; nothing to apply")
    ours = Invoice.objects.filter(invoice_number=number, zoho_id__isnull=True).first()
    if ours is not None:  # our own create whose answer has not arrived yet: the push links it
        return PullOutcome("invoice", ours.pk, "unchanged", f"invoice {number}: ours, being created; the push "
                                                             "links it")
    subscription_id = invoice_subscription_id(remote)
    service = (CustomerService.objects.filter(zoho_id=subscription_id).first() if subscription_id else
               CustomerService.objects.filter(zoho_child_invoice_id=zoho_id).first())
    lines = invoice_mirror_lines(remote)
    kind, start, end = Invoice.Kind.MANUAL, None, None
    if service is not None:
        kind = Invoice.Kind.SUBSCRIPTION_PERIOD
        start = service.current_term_starts_on or fields["issued_on"]
        end = service.current_term_ends_on if service.current_term_ends_on and service.current_term_ends_on >= start \
            else None
    invoice = Invoice(customer=customer, service=service, kind=kind, origin=Invoice.Origin.ZOHO, zoho_id=zoho_id,
                      period_start=start, period_end=end, sync_status=SyncStatus.SYNCED,
                      last_synced_at=timezone.now(), zoho_modified_at=modified, **fields)
    try:
        with transaction.atomic():
            Invoice.objects.bulk_create([invoice])  # no save(), no signal: a mirror queues no push
            InvoiceLine.objects.bulk_create([
                InvoiceLine(invoice=invoice, amount=validation.line_amount(line["quantity"], line["unit_price"]),
                            **line) for line in lines])
    except IntegrityError:  # mirrored meanwhile by another worker, or the number is taken by another invoice
        existing = Invoice.objects.filter(zoho_id=zoho_id).first()
        if existing is not None:
            return PullOutcome("invoice", existing.pk, "unchanged", f"invoice {number}: already mirrored")
        raise
    what = f"period invoice of {service.zoho_reference_id}" if service else "invoice"
    return PullOutcome("invoice", invoice.pk, "created", f"{number}: Zoho's {what} mirrored here ({invoice.total} "
                                                         f"{invoice.currency_code}, {invoice.status})")


# --- zoho_import: the columns of its file -------------------------------------------------------------
INVOICE_REF = Ref(Invoice, "invoice_number", "invoice with number",
                  only=("id", "customer_id", "total", "invoice_number"))


class InvoiceHooks(EntityHooks):
    """Each row of an invoice is one line; the lines must add up to the subtotal, with the admin's words. A changed
    set of lines replaces the old one and counts as a change of the invoice ("lines")."""

    def prepare(self, records, existing: dict) -> None:
        ids = [existing[r.key].pk for r in records if r.key in existing]
        self.existing = defaultdict(list)
        for line in InvoiceLine.objects.filter(invoice_id__in=ids).order_by("invoice_id", "position", "id"):
            self.existing[line.invoice_id].append(line_tuple(line))

    def before_clean(self, record) -> None:
        lines = []
        for position, (row, values) in enumerate(record.lines, start=1):
            line = InvoiceLine(position=position, **values)
            if line.quantity is not None and line.unit_price is not None:
                line.amount = validation.line_amount(line.quantity, line.unit_price)
            try:
                line.clean_fields(exclude=["invoice", "package"])  # the package was resolved for the batch
            except ValidationError as exc:
                record.refuse(*record.messages_of(exc, lines=True), row=row)
            lines.append(line)
        record.new_lines = lines
        if record.problems:
            return
        invoice = record.obj
        for problem in validation.invoice_totals_problems(subtotal=invoice.subtotal, tax_total=invoice.tax_total,
                                                          total=invoice.total, line_amounts=[x.amount for x in lines]):
            record.late_problems.append(problem)  # after clean(): its own totals message comes first
        if invoice.pk and [line_tuple(x) for x in lines] != self.existing.get(invoice.pk):
            record.changed.append("lines")

    def write(self, records) -> None:
        replaced = [r.obj.pk for r in records if r.outcome == "changed" and "lines" in r.changed]
        # Triggers muted: a deleted line would otherwise mark its invoice changed and queue its push one line at a
        # time; the import's own bookkeeping write already marks the invoice changed.
        with triggers_muted():
            InvoiceLine.objects.filter(invoice_id__in=replaced).delete()
        lines = []
        for record in records:
            if record.outcome == "created" or (record.outcome == "changed" and "lines" in record.changed):
                for line in record.new_lines:
                    line.pk, line.invoice_id = None, record.obj.pk
                    lines.append(line)
        InvoiceLine.objects.bulk_create(lines, batch_size=1000)


INVOICES = ImportEntity(
    name="invoices", noun="invoice", model=Invoice, key="invoice_number",
    shape="One row per invoice line: the invoice's columns repeat on each of its rows (or stay empty after the "
          "first), and the lines of one invoice are on consecutive rows, in their order.",
    columns=(
        Column("invoice_number", "invoice_number", "text", "INV-2025-0001", required=True, help="the natural key"),
        customer_column(),
        Column("service_reference", "service", "ref", "SVC-0001", help="the customer service it bills",
               ref=SERVICE_REF),
        Column("kind", "kind", "choice", "manual",
               help="subscription_period needs service_reference and period_start"),
        Column("status", "status", "choice", "issued"),
        Column("issued_on", "issued_on", "date", "2025-02-01", required=True),
        Column("due_on", "due_on", "date", "2025-02-15", help="not before issued_on"),
        Column("period_start", "period_start", "date", ""),
        Column("period_end", "period_end", "date", ""),
        Column("currency_code", "currency_code", "text", "USD"),
        Column("subtotal", "subtotal", "money", "49.00", required=True, help="the sum of the line amounts"),
        Column("tax_total", "tax_total", "money", "0.00"),
        Column("total", "total", "money", "49.00", required=True, help="subtotal plus tax_total"),
        Column("notes", "notes", "text", ""),
    ),
    line_columns=(
        Column("line_description", "description", "text", "Fiber 100, February", required=True),
        Column("line_plan_code", "package", "ref", "FIBER-100", help="the service package the line sells",
               ref=PACKAGE_REF),
        Column("line_quantity", "quantity", "quantity", "1"),
        Column("line_unit_price", "unit_price", "money", "39.00", required=True,
               help="the line's amount is quantity times unit price, rounded to the cent"),
    ),
    hooks=InvoiceHooks,
    extra_examples=({"line_description": "Installation", "line_plan_code": "", "line_quantity": "2",
                     "line_unit_price": "5.00"},),
)


SPEC = EntitySpec(
    name="invoice", order=40, model=Invoice, zoho_entity="invoice", id_field="invoice_id",
    list_path="/invoices", list_key="invoices", remote_key=lambda r: str(r.get("number") or r.get("invoice_number")),
    local_key=lambda i: i.invoice_number,
    remote_name=lambda r: r.get("number") or r.get("invoice_number"),
    to_zoho=invoice_to_zoho, fingerprint=invoice_fingerprint_fields,
    create=invoice_create, update=invoice_update, find=invoice_find,
    depends_on=(("customer", "customer"),), skip_reason=_invoice_skip,
    prepare=lambda qs: qs.select_related("customer", "service").prefetch_related(
        Prefetch("lines", queryset=InvoiceLine.objects.select_related("package"))),
    label=lambda i: i.invoice_number, duplicate_codes=(codes.DUPLICATE_INVOICE_NUMBER.name,),
    from_zoho=invoice_from_zoho,
    events=Events(data_key="invoice", read_path="/invoices/{}", types=("invoice_created",)),
    mirror=_mirror_invoice,
    failure_label="invoice_number", web_app_path="invoices", api_resources=("invoices",),
    reconcile=Reconcile(fields=(Field("total", lambda i: i.total, "total", OURS, "amount", column="total"),),
                        zoho_owned=(("status", "status"), ("balance_due", "amount")), money=("total", "total")),
    importing=INVOICES,
)
