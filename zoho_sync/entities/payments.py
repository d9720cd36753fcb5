"""Payments: Zoho's payments (`/payments`), ours pushed, Zoho's own (its hosted pages) mirrored here.

Everything that is particular to this entity lives here: its payload, its remote calls, the fields Zoho
owns and how they are pulled, and its spec (SPEC), which the generic code reads through the registry.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import DecimalField, OuterRef, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from zoho_sync.client import codes
from zoho_sync.client.errors import ZohoError
from zoho_sync.entities.base import EntitySpec, Events, PullOutcome, excluded
from zoho_sync.entities.customers import customer_column
from zoho_sync.entities.invoices import INVOICE_REF
from zoho_sync.entities.reconciling import OURS, Field, Reconcile, day
from zoho_sync.models import Customer, Invoice, Payment, SyncStatus
from zoho_sync.tabular.columns import Column
from zoho_sync.tabular.entity import ImportEntity
from zoho_sync.tabular.hooks import ZERO, EntityHooks
from zoho_sync.wire import inbound
from zoho_sync.wire.errors import BadZohoValue, InvalidLocalData, RemoteConflict
from zoho_sync.wire.inbound import column, zoho_number, zoho_time
from zoho_sync.wire.payloads import drop_empty, money
from zoho_sync.wire.remote import SyncContext, match_one

logger = logging.getLogger(__name__)


# --- payment ------------------------------------------------------------------------------------------------
def payment_own_invoice_application(payment) -> list[tuple[str, Decimal]]:
    """A payment for one of our invoices goes to it, never more than its balance (`paid_before` is an
    annotation: what completed payments before this one paid)."""
    if not payment.invoice_id:
        return []
    balance = payment.invoice.total - getattr(payment, "paid_before", Decimal("0"))
    return [(payment.invoice.zoho_id, min(payment.amount, max(balance, Decimal("0"))))]


def payment_to_zoho(payment, *, today: date | None = None,
                    applications: list[tuple[str, Decimal]] | None = None) -> dict[str, Any]:
    """`applications`: (Zoho invoice id, amount) pairs, capped at each invoice's balance. Without them, the
    payment's own invoice; a payment with no invoice is applied by the engine to the customer's oldest open Zoho
    invoices (the dry run shows it unapplied)."""
    if applications is None:
        applications = payment_own_invoice_application(payment)
    applied = sum((amount for _, amount in applications), Decimal("0"))
    if applied > payment.amount:
        raise InvalidLocalData(f"Applying {applied} of a {payment.amount} payment would over-apply it.")
    return drop_empty({
        "customer_id": payment.customer.zoho_id,
        "payment_mode": payment.method,
        "amount": money(payment.amount),
        "date": payment.paid_at.date().isoformat(),
        "reference_number": payment.reference,
        "description": payment.notes,
        "invoices": [{"invoice_id": invoice_id, "amount_applied": money(amount)}
                     for invoice_id, amount in applications if amount > 0],
    })


def payment_fingerprint_fields(payment, *, today: date | None = None) -> dict[str, Any]:
    """Everything the payment's body says, ids aside: a change of any of these after it landed is sent with
    PUT /payments/{id} (payment_update), never left as a silent difference from Zoho's copy."""
    return {"reference": payment.reference, "amount": str(payment.amount), "method": payment.method,
            "paid_on": payment.paid_at.date().isoformat() if payment.paid_at else None,
            "invoice": payment.invoice.invoice_number if payment.invoice_id else None, "notes": payment.notes}


# --- payments -----------------------------------------------------------------------------------------------
def payment_applications(ctx: SyncContext, payment, *, left: Decimal | None = None,
                         applied: dict[str, Decimal] | None = None) -> list[tuple[str, Decimal]]:
    """Where the money goes in Zoho, never more than a balance: the payment's own invoice, else the customer's
    oldest open invoices, else nothing (it stays as customer credit). An update passes what it adds (`left`) on
    top of what the payment already applied (`applied`, by Zoho invoice id)."""
    if payment.invoice_id:
        return payment_own_invoice_application(payment)
    left = payment.amount if left is None else left
    wanted = dict(applied or {})
    if left > 0:
        params = {"customer_id": payment.customer.zoho_id, "filter_by": "Status.Unpaid"}
        open_invoices = sorted(ctx.client.paginate("/invoices", "invoices", params=params),
                               key=lambda i: (i.get("invoice_date") or i.get("date") or "", str(i.get("invoice_id"))))
        for record in open_invoices:
            if left <= 0:
                break
            label = record.get("invoice_number") or record.get("invoice_id")
            balance = inbound.zoho_number(record.get("balance"), inbound.column(Invoice, "balance_due"),
                                          key=f"invoice {label} balance")
            amount = min(left, balance or Decimal("0"))
            if amount > 0:
                invoice_id = str(record["invoice_id"])
                wanted[invoice_id] = wanted.get(invoice_id, Decimal("0")) + amount
                left -= amount
    if left > 0:
        ctx.notes.append(f"{left} stays with the customer as credit in Zoho.")
    return list(wanted.items())


def payment_create(ctx: SyncContext, payment, payload: dict) -> dict:
    if not payment.invoice_id:  # applied to the customer's oldest open Zoho invoices, known only now
        payload = ctx.sent = payment_to_zoho(payment, applications=payment_applications(ctx, payment))
    try:
        return ctx.client.post("/payments", json=payload)["payment"]
    except ZohoError as refused:  # a refusal: nothing was recorded
        if refused.code_name != codes.PAYMENT_OVER_APPLIED.name or not payment.invoice_id:
            raise
    # Zoho's balance of the invoice is below ours (a credit note applied to it, a payment made in Zoho): the
    # payment goes to the invoice up to that balance, the rest stays with the customer as credit.
    record = ctx.client.get(f"/invoices/{payment.invoice.zoho_id}")["invoice"]
    balance = max(_zoho_amount(record.get("balance"), "an invoice balance of"), Decimal("0"))
    applied = min(payment.amount, balance)
    payload = ctx.sent = payment_to_zoho(payment, applications=[(payment.invoice.zoho_id, applied)])
    ctx.notes.append(f"Invoice {payment.invoice.invoice_number}'s balance in Zoho is {balance}: {applied} applied "
                     f"to it, {payment.amount - applied} stays with the customer as credit.")
    return ctx.client.post("/payments", json=payload)["payment"]


def _zoho_amount(value: Any, what: str) -> Decimal:
    """An amount Zoho answered (absent: 0); one that is not a finite number stops the update with a clear error."""
    amount = inbound.zoho_money(value)
    if amount is None and value in (None, ""):
        return Decimal("0")
    if amount is None or not amount.is_finite():
        raise RemoteConflict(f"Zoho answered {what} {value!r}, which is not an amount; nothing was changed in "
                             "Zoho. Check the record in Zoho, then queue it for sync again.")
    return amount


def _applied_by(record: dict) -> dict[str, Decimal]:
    """What a Zoho payment applies to each invoice (by Zoho invoice id)."""
    applied: dict[str, Decimal] = {}
    for entry in record.get("invoices") or []:
        amount = _zoho_amount(entry.get("amount_applied"), "an amount_applied of")
        if entry.get("invoice_id") and amount:
            applied[str(entry["invoice_id"])] = applied.get(str(entry["invoice_id"]), Decimal("0")) + amount
    return applied


def _trimmed(applied: dict[str, Decimal], amount: Decimal) -> list[tuple[str, Decimal]]:
    """`applied` cut down to `amount`, the last invoice first (as a refund takes money back)."""
    over = sum(applied.values(), Decimal("0")) - amount
    kept = list(applied.items())
    for position in range(len(kept) - 1, -1, -1):
        if over <= 0:
            break
        invoice_id, share = kept[position]
        cut = min(share, over)
        kept[position], over = (invoice_id, share - cut), over - cut
    return [(invoice_id, share) for invoice_id, share in kept if share > 0]


def payment_update(ctx: SyncContext, payment, payload: dict) -> str:
    """PUT /payments/{id} (§3.8): Zoho's payment takes what is held here. Zoho's copy is read first (one call):
    what it applied where. Where the amount (or the invoice) changed the payment is re-applied: its own invoice
    takes the new amount, never more than Zoho's balance there plus what this payment applied there already
    (one more read, only when an application grows); a payment with no invoice keeps its invoices, giving back
    from the last one when the amount shrinks and applying a raise to the oldest open invoices. A refunded
    payment, or one that would over-apply an invoice, is left for a person with the amounts: nothing is sent."""
    held = ctx.client.get(f"/payments/{payment.zoho_id}")["payment"]
    refunded = _zoho_amount(held.get("amount_refunded"), "an amount_refunded of")
    if str(held.get("status") or "success") != "success" or refunded > 0:
        raise RemoteConflict(
            f"Payment {payment.reference} changed here, but Zoho's payment {payment.zoho_id} is "
            f"{held.get('status')} with {refunded} refunded: sync edits only a payment nothing was refunded from. "
            "Nothing was changed in Zoho; correct it there, then queue it for sync again.")
    applied = _applied_by(held)
    if payment.invoice_id:
        wanted = payment_own_invoice_application(payment)
        for invoice_id, amount in wanted:
            already = applied.get(invoice_id, Decimal("0"))
            if amount <= already:
                continue
            balance = _zoho_amount(ctx.client.get(f"/invoices/{invoice_id}")["invoice"].get("balance"),
                                   f"invoice {payment.invoice.invoice_number}'s balance")
            room = balance + already
            if amount > room:
                raise RemoteConflict(
                    f"Applying {amount} of payment {payment.reference} to invoice {payment.invoice.invoice_number} "
                    f"would over-apply it: Zoho's balance there is {balance}, plus {already} this "
                    f"payment applied already, so {room} at most. Nothing was changed in Zoho; correct the amount "
                    "here or the invoice in Zoho, then queue it for sync again.")
    else:
        raise_by = max(payment.amount - _zoho_amount(held.get("amount"), "the payment's amount"), Decimal("0"))
        kept = _trimmed(applied, payment.amount)
        wanted = payment_applications(ctx, payment, left=raise_by, applied=dict(kept)) if raise_by else kept
    body = payment_to_zoho(payment, applications=wanted)
    # `invoices` is required on update (an empty list takes every application back); an emptied description
    # is sent empty, since Zoho keeps a field an update leaves out.
    ctx.sent = {**body, "description": payment.notes, "invoices": body.get("invoices", [])}
    answer = ctx.client.put(f"/payments/{payment.zoho_id}", json=ctx.sent)["payment"]
    ctx.answer = answer
    return "update"


def payment_find(ctx: SyncContext, payment) -> dict | None:
    records = ctx.client.paginate("/payments", "payments", params={"customer_id": payment.customer.zoho_id})
    return match_one(list(records), "reference_number", payment.reference, "payments")


PAYMENT_MODES = {"check", "cash", "creditcard", "banktransfer", "bankremittance", "others"}


def payment_status(remote: dict) -> str:
    refunded = _refunded(remote)
    amount = zoho_number(remote.get("amount"), column(Payment, "amount"), key="amount") or Decimal("0")
    if str(remote.get("status", "")) in ("failure", "failed", "declined"):
        return "failed"
    if refunded and refunded >= amount:
        return "refunded"
    return "completed"


def _refunded(remote: dict) -> Decimal:
    found = zoho_number(remote.get("amount_refunded"), column(Payment, "refunded_amount"), key="amount_refunded")
    return Decimal("0.00") if found is None else found


def payment_from_zoho(remote: dict, current) -> dict[str, Any]:
    fields: dict[str, Any] = {"status": payment_status(remote), "refunded_amount": _refunded(remote)}
    if fields["status"] == "completed" and not current.paid_at:
        fields["paid_at"] = zoho_time(remote.get("date")) or datetime.now(UTC)
    return fields


def payment_mirror(remote: dict) -> dict[str, Any]:
    mode = str(remote.get("payment_mode") or "others")
    return {
        "reference": str(remote.get("reference_number") or f"ZOHO-{remote.get('payment_id')}")[:64],
        "amount": zoho_number(remote.get("amount"), column(Payment, "amount"), key="amount") or Decimal("0.00"),
        "currency_code": str(remote.get("currency_code") or "USD")[:3],
        "method": mode if mode in PAYMENT_MODES else "others",
        "status": payment_status(remote),
        "refunded_amount": _refunded(remote),
        "paid_at": zoho_time(remote.get("date")) if payment_status(remote) != "failed" else None,
        "notes": str(remote.get("description") or "")[:1000],
    }


def payment_invoice_ids(remote: dict) -> list[str]:
    return [str(entry["invoice_id"]) for entry in remote.get("invoices") or []
            if isinstance(entry, dict) and entry.get("invoice_id")]


def _payment_skip(payment) -> str | None:
    if reason := excluded(payment.customer):
        return reason
    if payment.origin == Payment.Origin.ZOHO:
        return "The payment was recorded in Zoho and is mirrored here."
    if payment.status != Payment.Status.COMPLETED and not payment.zoho_id:
        return f"The payment is {payment.status}; only completed payments are recorded in Zoho."
    if payment.invoice_id and payment.invoice.kind == Invoice.Kind.SUBSCRIPTION_PERIOD:
        return ("It settles a subscription period billed here, which Zoho never invoiced: recording it in Zoho "
                "would turn into credit against Zoho's next invoice.")
    return None


def _prepare_payments(qs: QuerySet) -> QuerySet:
    earlier = Payment.objects.filter(invoice=OuterRef("invoice"), status=Payment.Status.COMPLETED,
                                     pk__lt=OuterRef("pk"))
    paid = Subquery(earlier.values("invoice").annotate(total=Sum("amount")).values("total")[:1])
    zero = Value(Decimal("0.00"), output_field=DecimalField(max_digits=12, decimal_places=2))
    return qs.select_related("customer", "invoice").annotate(paid_before=Coalesce(paid, zero))


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


def _mirror_payment(remote: dict, zoho_id: str, modified: datetime) -> PullOutcome:
    fields = payment_mirror(remote)
    customer = Customer.objects.filter(zoho_id=str(remote.get("customer_id") or "")).first()
    if customer is None:
        return PullOutcome("payment", None, "unknown", f"payment {zoho_id}: its customer is not one of ours")
    ours = Payment.objects.filter(reference=fields["reference"]).first()
    if ours is not None:  # our own create whose answer has not arrived yet, or a reference already used here
        return PullOutcome("payment", ours.pk, "unchanged", f"payment {fields['reference']}: ours; the push links "
                                                             "it")
    invoice_ids = payment_invoice_ids(remote)
    invoice = Invoice.objects.filter(zoho_id__in=invoice_ids).first() if invoice_ids else None
    payment = Payment(customer=customer, invoice=invoice, origin=Payment.Origin.ZOHO, zoho_id=zoho_id,
                      sync_status=SyncStatus.SYNCED, last_synced_at=timezone.now(), zoho_modified_at=modified,
                      **fields)
    try:
        with transaction.atomic():
            Payment.objects.bulk_create([payment])
    except IntegrityError:
        existing = Payment.objects.filter(zoho_id=zoho_id).first()
        if existing is not None:
            return PullOutcome("payment", existing.pk, "unchanged", f"payment {fields['reference']}: already "
                                                                     "mirrored")
        raise
    return PullOutcome("payment", payment.pk, "created", f"{payment.reference}: Zoho's payment of {payment.amount} "
                                                         f"{payment.currency_code} mirrored here ({payment.status})")


def _related(remote: dict, client) -> list[tuple[str, str]]:
    """The invoices a payment paid (or no longer pays, refunded): their balance and status follow it. A payment
    with refunds: the credit note of each refund too (Zoho's own refunds are kept here; a payment's record names
    none, so they are listed: one call, only for a payment with money refunded)."""
    found = [("invoice", invoice_id) for invoice_id in payment_invoice_ids(remote)]
    if _refunded(remote) > 0 and remote.get("payment_id"):
        refunds = client.paginate("/creditnotes/refunds", "refunds", params={"payment_id": str(remote["payment_id"])})
        found += [("credit_note", str(r["creditnote_id"])) for r in refunds if r.get("creditnote_id")]
    return found


# --- zoho_import: the columns of its file -------------------------------------------------------------
class PaymentHooks(EntityHooks):
    """The balance a payment is checked against: the invoice's completed payments in the database, other than
    those in this batch, plus the completed payments accepted on earlier rows of this batch (earlier batches are
    already written inside the import's transaction). So two payments that together pay more than an invoice's
    balance are refused from the one that goes over, in file order."""

    def prepare(self, records, existing: dict) -> None:
        ids = {r.values["invoice"].pk for r in records if r.values.get("invoice") is not None}
        refs = [r.key for r in records]
        rows = (Payment.objects.filter(invoice_id__in=ids, status=Payment.Status.COMPLETED)
                .exclude(reference__in=refs).values("invoice_id").annotate(paid=Sum("amount")).order_by())
        self.paid = defaultdict(lambda: ZERO, {row["invoice_id"]: row["paid"] for row in rows})

    def before_clean(self, record) -> None:
        if record.obj.invoice_id:
            record.obj.paid_by_others = self.paid[record.obj.invoice_id]

    def accepted(self, record) -> None:
        payment = record.obj
        if payment.invoice_id and payment.status == Payment.Status.COMPLETED:
            self.paid[payment.invoice_id] += payment.amount


PAYMENTS = ImportEntity(
    name="payments", noun="payment", model=Payment, key="reference", hooks=PaymentHooks,
    columns=(
        Column("reference", "reference", "text", "PAY-2025-0001", required=True, help="the natural key"),
        customer_column(),
        Column("invoice_number", "invoice", "ref", "INV-2025-0001",
               help="the invoice it pays: at most its balance (completed payments only), in file order",
               ref=INVOICE_REF),
        Column("amount", "amount", "money", "49.00", required=True, help="greater than zero"),
        Column("currency_code", "currency_code", "text", "USD"),
        Column("method", "method", "choice", "banktransfer"),
        Column("status", "status", "choice", "completed", help="completed needs paid_at"),
        Column("paid_at", "paid_at", "datetime", "2025-02-10T12:00:00+00:00"),
        Column("notes", "notes", "text", ""),
    ),
)


SPEC = EntitySpec(
    name="payment", order=50, model=Payment, zoho_entity="payment", id_field="payment_id",
    list_path="/payments", list_key="payments", remote_key=lambda r: str(r.get("reference_number", "")),
    local_key=lambda p: p.reference,
    remote_name=lambda r: r.get("reference_number"),
    to_zoho=payment_to_zoho, fingerprint=payment_fingerprint_fields,
    create=payment_create, update=payment_update, find=payment_find,
    depends_on=(("customer", "customer"), ("invoice", "invoice")), skip_reason=_payment_skip,
    prepare=_prepare_payments, label=lambda p: p.reference,
    extra_create_calls=lambda p: 0 if p.invoice_id else 1,  # find the customer's open invoices
    # read Zoho's payment first (an application that grows reads its invoice's balance too: not known offline)
    extra_update_calls=lambda p: 1,
    from_zoho=payment_from_zoho, on_created=lambda record: invoices_paid_by(record),
    events=Events(data_key="payment", read_path="/payments/{}", prefixes=("payment_",)),
    mirror=_mirror_payment, related=_related,
    failure_label="reference", web_app_path="payments", api_resources=("payments",),
    reconcile=Reconcile(
        fields=(Field("amount", lambda p: p.amount, "amount", OURS, "amount", column="amount"),
                Field("method", lambda p: p.method, "payment_mode", OURS),
                Field("paid_on", lambda p: p.paid_at.date() if p.paid_at else None, "date", OURS, norm=day)),
        zoho_owned=(("status", "status"), ("refunded_amount", "amount")), money=("amount", "amount")),
    importing=PAYMENTS,
)
