"""Credit notes and refunds: Zoho's credit notes (`/creditnotes`) and refunds of payments
(`POST /payments/{id}/refunds`, api doc §3.8-3.9).

One local record (models.CreditNote), two kinds:
- A **credit** is a credit note with our number (`creditnote_number`, `ignore_auto_number_generation`), one item
  whose code is the credited service package's plan code, and, when it credits an invoice, an application of its
  amount to that invoice (`POST /creditnotes/{id}/invoices`: Zoho's create body documents no invoice). Its Zoho id
  is the credit note's.
- A **refund** pays a completed payment back: Zoho makes a credit note for it and refunds it at once; its Zoho id
  is that credit note's, the refund's own id is kept beside it. Zoho numbers that credit note itself, so our
  number travels in the refund's `description` (the only text field refunds.yml documents), and a lost answer
  is found again among the payment's refunds by it.

Exactly once: the create is never retried blind (the engine's create intent); a credit note is found again by
its number, a refund by its payment and description. Zoho documents no update of either: after they exist,
sync only completes what an interrupted push left undone (the application to the invoice), and a changed
amount is refused with a clear error (void the credit note in Zoho and make a new one here).

Back from Zoho: status and the credit left (`balance`); Zoho's own credit notes (`creditnote_added`) are
mirrored here. Zoho's own refunds of payments reach the payment (its refunded amount), as before.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from zoho_sync.client import codes
from zoho_sync.entities.base import EntitySpec, Events, PullOutcome, excluded
from zoho_sync.entities.customers import customer_column
from zoho_sync.entities.invoices import INVOICE_REF
from zoho_sync.entities.plans import PACKAGE_REF
from zoho_sync.entities.reconciling import OURS, Field, Reconcile
from zoho_sync.models import CreditNote, Customer, Invoice, Payment, SyncStatus
from zoho_sync.tabular.columns import Column, Ref
from zoho_sync.tabular.entity import ImportEntity
from zoho_sync.wire.errors import InvalidLocalData
from zoho_sync.wire.inbound import column, zoho_date, zoho_number
from zoho_sync.wire.payloads import drop_empty, money
from zoho_sync.wire.remote import SyncContext, match_one

ZERO = Decimal("0.00")
STATUS = {"open": "open", "closed": "closed", "void": "void", "draft": "draft"}


# --- to Zoho ------------------------------------------------------------------------------------------------
def item_code(note) -> str:
    """Zoho's credit-note item code: the credited package's plan code, else that of the invoice's first line
    that sells a package."""
    if note.package_id:
        return note.package.plan_code
    if note.invoice_id:
        for line in note.invoice.lines.all():
            if line.package_id:
                return line.package.plan_code
    raise InvalidLocalData("A credit note needs a service package: Zoho's credit note item is a plan code (set "
                           "the package, or credit an invoice with a line that sells one).")


def refund_description(note) -> str:
    """Our number first: a refund is found again by it (`find`)."""
    return f"{note.number} {note.reason}".strip()[:255]


def credit_note_to_zoho(note, *, today: date | None = None) -> dict[str, Any]:
    if note.kind == CreditNote.Kind.REFUND:
        return {"amount": money(note.amount), "description": refund_description(note)}
    return drop_empty({
        "customer_id": note.customer.zoho_id,
        "date": note.issued_on.isoformat(),
        "creditnote_number": note.number,
        "ignore_auto_number_generation": True,
        "reference_number": note.invoice.invoice_number if note.invoice_id else "",
        "notes": note.reason,
        "creditnote_items": [{"code": item_code(note), "quantity": 1, "price": money(note.amount),
                              "description": note.reason or f"Credit {note.number}"}],
    })


def credit_note_fingerprint(note, *, today: date | None = None) -> dict[str, Any]:
    """What Zoho holds of it once made: a change of any of these cannot be sent (Zoho documents no update)."""
    return {"number": note.number, "kind": note.kind, "amount": str(note.amount),
            "issued_on": note.issued_on.isoformat() if note.issued_on else None,
            "invoice": note.invoice.invoice_number if note.invoice_id else None,
            "payment": note.payment.reference if note.payment_id else None}


# --- Zoho's calls -------------------------------------------------------------------------------------------
def credit_note_create(ctx: SyncContext, note, payload: dict) -> dict:
    if note.kind == CreditNote.Kind.REFUND:
        refund = ctx.client.post(f"/payments/{note.payment.zoho_id}/refunds", json=payload)["refund"]
        ctx.remember(note, zoho_refund_id=str(refund.get("refund_id") or ""))
        return refund  # carries creditnote_id, the record's Zoho id
    record = ctx.client.post("/creditnotes", json=payload,
                             params={"ignore_auto_number_generation": "true"})["credit_note"]
    if note.invoice_id:
        # The credit note exists from here on: its id is kept at once and the fingerprint cleared, so a failed
        # application is completed by the next push (credit_note_update) instead of counted as done.
        ctx.remember(note, zoho_id=str(record["creditnote_id"]), sync_fingerprint="")
        note.zoho_id = str(record["creditnote_id"])
        _apply_to_invoice(ctx, note, record)
    return record


def _applied_to(record: dict, invoice_zoho_id: str) -> Decimal:
    return sum((zoho_number(entry.get("amount") or entry.get("amount_applied"), key="invoices[].amount") or ZERO
                for entry in record.get("invoices") or []
                if isinstance(entry, dict) and str(entry.get("invoice_id")) == invoice_zoho_id), ZERO)


def _apply_to_invoice(ctx: SyncContext, note, record: dict) -> None:
    """Apply what is not yet applied of the credit to its invoice, never more than the invoice's balance in Zoho
    (an invoice paid meanwhile takes less, or nothing: the rest stays with the customer as credit, and the sync
    log says so)."""
    missing = note.amount - _applied_to(record, note.invoice.zoho_id)
    if missing <= 0:
        return
    invoice = ctx.client.get(f"/invoices/{note.invoice.zoho_id}")["invoice"]
    balance = zoho_number(invoice.get("balance"), column(Invoice, "balance_due"), key="balance") or ZERO
    applied = min(missing, max(balance, ZERO))
    if applied > 0:
        ctx.client.post(f"/creditnotes/{note.zoho_id}/invoices",
                        json={"invoices": [{"invoice_id": note.invoice.zoho_id, "amount_applied": money(applied)}]})
        ctx.notes.append(f"{applied} applied to invoice {note.invoice.invoice_number}")
    if applied < missing:
        ctx.notes.append(f"{missing - applied} left with the customer as credit: invoice "
                         f"{note.invoice.invoice_number}'s balance in Zoho is {balance}")


def credit_note_update(ctx: SyncContext, note, payload: dict) -> str:
    """Zoho documents no update of a credit note or a refund: complete what an interrupted push left undone,
    and refuse a change Zoho cannot take."""
    held = ctx.client.get(f"/creditnotes/{note.zoho_id}")["credit_note"]  # a refund's too: its credit note
    total = zoho_number(held.get("total"), column(CreditNote, "amount"), key="total")
    if total is not None and total != note.amount:
        raise InvalidLocalData(f"Zoho's {note.number} is of {total}, this record says {note.amount}: Zoho cannot "
                               "change a credit note or refund once made. Void it in Zoho and make a new one here.")
    if note.kind == CreditNote.Kind.CREDIT and note.invoice_id and held.get("status") == "open" and \
            _applied_to(held, note.invoice.zoho_id) == ZERO:  # interrupted before its application
        _apply_to_invoice(ctx, note, held)
    return "update"


def credit_note_find(ctx: SyncContext, note) -> dict | None:
    if note.kind == CreditNote.Kind.REFUND:
        refunds = ctx.client.paginate("/creditnotes/refunds", "refunds", params={"payment_id": note.payment.zoho_id})
        mine = [r for r in refunds if str(r.get("description") or "").split(" ", 1)[0] == note.number]
        found = match_one(mine, "payment_id", note.payment.zoho_id, "refunds")
        if found:
            ctx.remember(note, zoho_refund_id=str(found.get("refund_id") or ""))
        return found
    records = ctx.client.paginate("/creditnotes", "creditnotes", params={"creditnote_number": note.number})
    return match_one(list(records), "creditnote_number", note.number, "credit notes")


# --- from Zoho ----------------------------------------------------------------------------------------------
def credit_note_from_zoho(remote: dict, current) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    if str(remote.get("status") or "") in STATUS:
        fields["status"] = STATUS[str(remote["status"])]
    balance = zoho_number(remote.get("balance"), column(CreditNote, "balance"), key="balance")
    if balance is not None:
        fields["balance"] = balance
    return fields


def _mirror(remote: dict, zoho_id: str, modified: datetime) -> PullOutcome:
    """A credit note made in Zoho: kept here as Zoho's (never pushed)."""
    number = str(remote.get("creditnote_number") or f"ZOHO-{zoho_id}")[:64]
    customer = Customer.objects.filter(zoho_id=str(remote.get("customer_id") or "")).first()
    if customer is None:
        return PullOutcome("credit_note", None, "unknown", f"credit note {number}: its customer is not one of ours")
    payment = (Payment.objects.filter(zoho_id=str(remote["payment_id"])).first() if remote.get("payment_id")
               else None)
    if ours := _ours_in_flight(number, payment):
        return PullOutcome("credit_note", ours.pk, "unchanged", f"credit note {number}: ours, being created; the "
                                                                 "push links it")
    if CreditNote.objects.filter(number=number).exists():  # Zoho's number is one of ours for another record
        number = f"ZOHO-{zoho_id}"[:64]
    invoice_ids = [str(e.get("invoice_id")) for e in remote.get("invoices") or [] if isinstance(e, dict)]
    invoice = Invoice.objects.filter(zoho_id__in=invoice_ids).first() if invoice_ids else None
    amount = zoho_number(remote.get("total"), column(CreditNote, "amount"), key="total") or ZERO
    if amount <= 0:
        return PullOutcome("credit_note", None, "unknown", f"credit note {number}: no amount; nothing to keep")
    note = CreditNote(number=number, kind=CreditNote.Kind.REFUND if payment else CreditNote.Kind.CREDIT,
                      origin=CreditNote.Origin.ZOHO, customer=customer, invoice=invoice, payment=payment,
                      amount=amount, currency_code=str(remote.get("currency_code") or "USD")[:3],
                      issued_on=zoho_date(remote.get("date")) or timezone.localdate(),
                      reason=str(remote.get("notes") or "")[:255], zoho_id=zoho_id, sync_status=SyncStatus.SYNCED,
                      last_synced_at=timezone.now(), zoho_modified_at=modified,
                      **credit_note_from_zoho(remote, None))
    try:
        with transaction.atomic():
            CreditNote.objects.bulk_create([note])  # no save(), no signal: a mirror queues no push
    except IntegrityError:
        existing = CreditNote.objects.filter(zoho_id=zoho_id).first()
        if existing is not None:
            return PullOutcome("credit_note", existing.pk, "unchanged", f"credit note {number}: already mirrored")
        raise
    return PullOutcome("credit_note", note.pk, "created", f"{number}: Zoho's credit note of {amount} "
                                                          f"{note.currency_code} mirrored here ({note.status})")


def _ours_in_flight(number: str, payment) -> CreditNote | None:
    """A record of ours this Zoho credit note may be, whose create has not answered yet: a credit with its number
    and no Zoho id, or (Zoho numbers a refund's credit note itself) a refund of the same payment being created.
    The push links it; mirroring it as well would keep the money twice."""
    ours = CreditNote.objects.filter(number=number, zoho_id__isnull=True).first()
    if ours is None and payment is not None:
        ours = CreditNote.objects.filter(payment=payment, kind=CreditNote.Kind.REFUND, zoho_id__isnull=True,
                                         create_intent_at__isnull=False).first()
    return ours


def _invoice_of(remote: dict, client) -> list[tuple[str, str]]:
    """The invoices a credit note was applied to: their balance follows it."""
    return [("invoice", str(e["invoice_id"])) for e in remote.get("invoices") or []
            if isinstance(e, dict) and e.get("invoice_id")]


# --- which are pushed -----------------------------------------------------------------------------------------
def _skip(note) -> str | None:
    if reason := excluded(note.customer):
        return reason
    if note.origin == CreditNote.Origin.ZOHO:
        return "The credit note was made in Zoho and is mirrored here."
    if not note.zoho_id and note.status == CreditNote.Status.VOID:
        return "The credit note was voided before it reached Zoho."
    return None


def _prepare(qs: QuerySet) -> QuerySet:
    return qs.select_related("customer", "invoice", "payment", "package").prefetch_related("invoice__lines__package")


# --- zoho_import: the columns of its file -------------------------------------------------------------
PAYMENT_REF = Ref(Payment, "reference", "payment with reference", only=("id", "customer_id", "amount"))

CREDIT_NOTES = ImportEntity(
    name="credit_notes", noun="credit note", model=CreditNote, key="number",
    columns=(
        Column("number", "number", "text", "CN-2025-0001", required=True, help="the natural key"),
        customer_column(),
        Column("kind", "kind", "choice", "credit", help="refund needs payment_reference"),
        Column("invoice_number", "invoice", "ref", "INV-2025-0001", help="the invoice it credits",
               ref=INVOICE_REF),
        Column("payment_reference", "payment", "ref", "", help="the payment a refund pays back", ref=PAYMENT_REF),
        Column("plan_code", "package", "ref", "", help="the service package credited (default: the invoice's)",
               ref=PACKAGE_REF),
        Column("amount", "amount", "money", "10.00", required=True, help="greater than zero"),
        Column("currency_code", "currency_code", "text", "USD"),
        Column("issued_on", "issued_on", "date", "2025-02-20", required=True),
        Column("reason", "reason", "text", "Outage credit"),
    ),
)


SPEC = EntitySpec(
    name="credit_note", order=60, model=CreditNote, zoho_entity="credit_note", id_field="creditnote_id",
    list_path="/creditnotes", list_key="creditnotes",
    # A refund's credit note carries Zoho's own number: it never matches one of ours by key.
    remote_key=lambda r: "" if r.get("payment_id") else str(r.get("creditnote_number", "")).casefold(),
    local_key=lambda n: n.number.casefold() if n.kind == CreditNote.Kind.CREDIT else f"refund {n.number}",
    remote_name=lambda r: r.get("creditnote_number"),
    to_zoho=credit_note_to_zoho, fingerprint=credit_note_fingerprint,
    create=credit_note_create, update=credit_note_update, find=credit_note_find,
    depends_on=(("customer", "customer"), ("invoice", "invoice"), ("payment", "payment"),
                ("package", "service_package")),
    skip_reason=_skip, prepare=_prepare, label=lambda n: n.number,
    # the invoice's balance, then the application
    extra_create_calls=lambda n: 2 if n.invoice_id and n.kind == CreditNote.Kind.CREDIT else 0,
    extra_update_calls=lambda n: 0,  # the read is the update's one call; an application may follow
    duplicate_codes=(codes.DUPLICATE_CREDITNOTE_NUMBER.name,),
    from_zoho=credit_note_from_zoho, mirror=_mirror, related=_invoice_of,
    events=Events(data_key="credit_note", read_path="/creditnotes/{}", types=("creditnote_added",)),
    failure_label="number", web_app_path="creditnotes", api_resources=("creditnotes",),
    aliases=("creditnotes", "refunds"),
    reconcile=Reconcile(fields=(Field("amount", lambda n: n.amount, "total", OURS, "amount", column="amount"),),
                        zoho_owned=(("status", "status"), ("balance", "amount")), money=("amount", "total")),
    importing=CREDIT_NOTES,
    admin={"list_display": ("number", "kind", "customer", "invoice", "payment", "amount", "status", "balance",
                            "issued_on"),
           "list_filter": ("kind", "origin", "status"), "list_select_related": ("customer", "invoice", "payment"),
           "search_fields": ("number", "customer__account_number", "invoice__invoice_number", "payment__reference"),
           "exact_search_fields": ("number", "zoho_id", "invoice__invoice_number", "payment__reference"),
           "autocomplete_fields": ("customer", "invoice", "payment", "package"),
           "sync_readonly": ("balance", "zoho_refund_id")},
)
