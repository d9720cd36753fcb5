"""Credit notes and refunds, the sixth entity, end to end against the sandbox over HTTP: a credit against an
invoice, a credit the customer keeps and a refund of a payment each reach Zoho exactly once (a lost answer, a
crash between the create and the application, a duplicate number), Zoho's own credit notes come back through the
inbox, and reconciliation, import, the admin and the failed-records view cover them."""

from __future__ import annotations

import io
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from tests.builders import make_credit_note, make_customer, make_invoice, make_payment
from zoho_sync import entities, importing, inbox, services
from zoho_sync.models import CreditNote, Invoice, SyncFailure, SyncLog, SyncState, SyncStatus, ZohoEvent
from zoho_sync.reconcile import reconcile

pytestmark = pytest.mark.django_db


def push() -> None:
    services.sync_pending(entity="all")


def zoho_note(zoho, note: CreditNote) -> dict:
    (record,) = [r for r in zoho.records("creditnotes") if r["creditnote_id"] == note.zoho_id]
    return record


def zoho_invoice(zoho, invoice: Invoice) -> dict:
    (record,) = [r for r in zoho.records("invoices") if r["invoice_id"] == invoice.zoho_id]
    return record


def test_a_credit_against_an_invoice_reaches_zoho_once_and_lowers_its_balance(zoho):
    invoice = make_invoice(lines=((Decimal("1"), Decimal("50.00")),))
    note = make_credit_note(invoice=invoice, amount=Decimal("20.00"))
    push()
    note.refresh_from_db()
    invoice.refresh_from_db()
    assert note.sync_state == SyncState.SYNCED and note.zoho_id
    held = zoho_note(zoho, note)
    assert (held["creditnote_number"], held["total"], held["balance"], held["status"]) == (
        note.number, 20.0, 0.0, "closed")
    assert zoho_invoice(zoho, invoice)["balance"] == 30.0
    assert len(zoho.requests("POST", "/creditnotes")) == 2  # the create, then its application (/invoices)
    push()  # nothing changed: nothing sent
    assert len(zoho.records("creditnotes")) == 1 and len(zoho.requests("POST", "/creditnotes")) == 2
    assert list(SyncLog.objects.filter(entity="credit_note").values_list("action", "status")) == [
        ("create", "success")]


def test_a_credit_the_customer_keeps_is_open_credit_in_zoho(zoho):
    note = make_credit_note(amount=Decimal("15.00"))
    push()
    note.refresh_from_db()
    held = zoho_note(zoho, note)
    assert (held["status"], held["balance"], held["creditnote_items"][0]["code"]) == (
        "open", 15.0, note.package.plan_code)
    (customer,) = [c for c in zoho.records("customers") if c["customer_id"] == note.customer.zoho_id]
    assert customer["unused_credits"] == 15.0


def test_a_refund_of_a_payment_reaches_zoho_once(zoho):
    invoice = make_invoice(lines=((Decimal("1"), Decimal("50.00")),))
    payment = make_payment(invoice=invoice, amount=Decimal("50.00"))
    note = make_credit_note(kind=CreditNote.Kind.REFUND, payment=payment, amount=Decimal("20.00"),
                            reason="Goodwill")
    push()
    note.refresh_from_db()
    payment.refresh_from_db()
    assert note.sync_state == SyncState.SYNCED and note.zoho_id and note.zoho_refund_id
    (held,) = [p for p in zoho.records("payments") if p["payment_id"] == payment.zoho_id]
    assert held["amount_refunded"] == 20.0
    (refund,) = [r for r in zoho.records("refunds") if r["refund_id"] == note.zoho_refund_id]
    assert (refund["creditnote_id"], refund["description"]) == (note.zoho_id, f"{note.number} Goodwill")
    push()
    assert len(zoho.requests("POST", "/payments/*/refunds")) == 1


@pytest.mark.parametrize("kind", ["credit", "refund"])
def test_a_lost_answer_is_found_again_not_created_twice(zoho, kind):
    if kind == "refund":
        payment = make_payment(amount=Decimal("40.00"))
        note = make_credit_note(kind=CreditNote.Kind.REFUND, payment=payment, amount=Decimal("5.00"))
        services.sync_pending(entity="payments")
        payment.refresh_from_db()
        path = "/payments/*/refunds"
    else:
        note = make_credit_note()
        path = "/creditnotes"
    zoho.fail_next("POST", path, kind="lose_response")
    push()  # the answer is lost: the record waits for a lookup
    push()  # the lookup finds it
    note.refresh_from_db()
    assert note.sync_status == SyncStatus.SYNCED and note.zoho_id
    assert len(zoho.records("creditnotes")) == 1
    assert len([r for r in zoho.requests("POST", path) if r["api_path"].endswith(("/creditnotes", "/refunds"))]) == 1
    actions = SyncLog.objects.filter(entity="credit_note").order_by("pk").values_list("action", flat=True)
    assert list(actions) == ["create", "link"]


def test_an_application_that_failed_after_the_create_is_completed_by_the_next_push(zoho):
    invoice = make_invoice(lines=((Decimal("1"), Decimal("50.00")),))
    note = make_credit_note(invoice=invoice, amount=Decimal("20.00"))
    services.sync_pending(entity="customers")
    services.sync_pending(entity="invoices")
    invoice.refresh_from_db()
    zoho.fail_next("POST", "/creditnotes/*/invoices", status=500, code="INTERNAL_ERROR")
    push()
    note.refresh_from_db()
    assert note.sync_status == SyncStatus.FAILED and note.zoho_id, "the credit note exists: its id is kept"
    assert zoho_invoice(zoho, invoice)["balance"] == 50.0
    services.sync_retry_failed()
    note.refresh_from_db()
    assert note.sync_status == SyncStatus.SYNCED, note.last_sync_error
    assert len(zoho.records("creditnotes")) == 1 and zoho_invoice(zoho, invoice)["balance"] == 30.0


def test_a_payment_of_an_invoice_credited_first_applies_up_to_its_balance_in_zoho(zoho):
    """Found by the crash tests: a credit lands before the payment of the same invoice (the payment failed and was
    retried), so Zoho's balance is below ours; the payment is recorded once, applied up to that balance."""
    invoice = make_invoice(lines=((Decimal("1"), Decimal("50.00")),))
    make_credit_note(invoice=invoice, amount=Decimal("20.00"))
    push()
    payment = make_payment(invoice=invoice, amount=Decimal("50.00"))
    push()
    payment.refresh_from_db()
    invoice.refresh_from_db()
    assert payment.sync_status == SyncStatus.SYNCED, payment.last_sync_error
    (held,) = zoho.records("payments")
    assert [(e["invoice_id"], e["amount_applied"]) for e in held["invoices"]] == [(invoice.zoho_id, 30.0)]
    assert zoho_invoice(zoho, invoice)["balance"] == 0.0
    said = SyncLog.objects.filter(entity="payment", action="create").values_list("message", flat=True).get()
    assert "30.00 applied to it, 20.00 stays with the customer as credit" in said
    assert len(zoho.records("payments")) == 1


def test_a_duplicate_number_in_zoho_is_adopted_when_it_is_clearly_ours(zoho):
    note = make_credit_note(amount=Decimal("12.00"))
    services.sync_pending(entity="customers")
    services.sync_pending(entity="service_packages")
    note.refresh_from_db()
    from zoho_sync.zoho import get_zoho_client

    get_zoho_client().post("/creditnotes", params={"ignore_auto_number_generation": "true"},
                           json=entities.BY_NAME["credit_note"].to_zoho(entities.BY_NAME["credit_note"].prepare(
                               CreditNote.objects.filter(pk=note.pk)).get()))
    push()
    note.refresh_from_db()
    assert note.sync_status == SyncStatus.SYNCED and len(zoho.records("creditnotes")) == 1


def test_a_changed_amount_is_refused_with_a_clear_error(zoho):
    note = make_credit_note(amount=Decimal("12.00"))
    push()
    CreditNote.objects.filter(pk=note.pk).update(amount=Decimal("13.00"), sync_status=SyncStatus.PENDING)
    push()
    note.refresh_from_db()
    assert note.sync_status == SyncStatus.FAILED
    assert "cannot change a credit note or refund once made" in note.last_sync_error
    assert SyncFailure.objects.filter(entity="credit_note", record_id=note.pk).exists()


def test_a_refund_of_more_than_is_left_is_refused_before_it_is_sent(zoho):
    payment = make_payment(amount=Decimal("10.00"))
    make_credit_note(kind=CreditNote.Kind.REFUND, payment=payment, amount=Decimal("8.00"))
    second = CreditNote(number="CN-OVER", kind=CreditNote.Kind.REFUND, payment=payment, customer=payment.customer,
                        amount=Decimal("5.00"), issued_on=payment.paid_at.date())
    with pytest.raises(ValidationError, match=r"At most 2\.00 of payment"):
        second.full_clean()


def test_zohos_own_credit_note_comes_back_through_the_inbox(zoho):
    customer = make_customer()
    invoice = make_invoice(customer=customer, lines=((Decimal("1"), Decimal("50.00")),))
    push()
    invoice.refresh_from_db()
    made = zoho.create_credit_note(invoice.customer.zoho_id, 20, invoice_id=invoice.zoho_id)
    event, _ = inbox.event_accept({"event_id": "901", "event_type": "creditnote_added",
                                   "event_time": made["updated_time"], "data": {"credit_note": made}},
                                  source=ZohoEvent.Source.REPLAY)
    inbox.event_apply(event.pk)
    mirrored = CreditNote.objects.get(zoho_id=made["creditnote_id"])
    assert (mirrored.origin, mirrored.invoice_id, mirrored.amount, mirrored.sync_status) == (
        "zoho", invoice.pk, Decimal("20.00"), SyncStatus.SYNCED)
    invoice.refresh_from_db()
    assert invoice.balance_due == Decimal("30.00"), "the invoice it credited was read again"
    calls = len(zoho.requests())
    push()
    assert len(zoho.requests()) == calls, "a mirror is never pushed"


def test_zohos_own_refund_of_a_payment_comes_back_as_a_refund_here(zoho):
    invoice = make_invoice(lines=((Decimal("1"), Decimal("50.00")),))
    payment = make_payment(invoice=invoice, amount=Decimal("50.00"))
    push()
    payment.refresh_from_db()
    zoho.refund_payment(payment.zoho_id, amount=10)
    (held,) = [p for p in zoho.records("payments") if p["payment_id"] == payment.zoho_id]
    event, _ = inbox.event_accept({"event_id": "902", "event_type": "payment_refunded",
                                   "event_time": held["updated_time"], "data": {"payment": held}},
                                  source=ZohoEvent.Source.REPLAY)
    inbox.event_apply(event.pk)
    payment.refresh_from_db()
    assert payment.refunded_amount == Decimal("10.00")
    (refund,) = CreditNote.objects.filter(payment=payment)
    assert (refund.kind, refund.origin, refund.amount, refund.customer_id, refund.sync_status) == (
        "refund", "zoho", Decimal("10.00"), payment.customer_id, SyncStatus.SYNCED)
    assert refund.zoho_id == zoho.records("refunds")[0]["creditnote_id"]
    inbox.event_reset(event.pk)
    inbox.event_apply(event.pk)  # the same event again: the refund is kept once
    assert CreditNote.objects.filter(payment=payment).count() == 1


def test_reconcile_covers_credit_notes(zoho):
    note = make_credit_note(amount=Decimal("15.00"))
    push()
    note.refresh_from_db()
    made = zoho.create_credit_note(note.customer.zoho_id, 7)  # made in Zoho only
    report = reconcile(specs=(entities.BY_NAME["credit_note"],))
    assert [(d.kind, d.label) for d in report.entities["credit_note"].drift] == [
        ("missing_locally", made["creditnote_number"])], "named by Zoho's number, as people find it"
    assert report.entities["credit_note"].local_total == Decimal("15.00")


def test_credit_notes_import_from_their_template(zoho):
    """The templates chain: a customer, a package, an invoice, then a credit note against that invoice."""
    for name in ("customers", "service_packages", "customer_services", "invoices", "credit_notes"):
        entity = importing.entity_named(name)
        report = importing.import_rows(entity=entity, lines=io.StringIO(importing.template(entity)))
        assert report.committed and report.counts["created"] == 1, (name, report.counts)
    note = CreditNote.objects.get(number="CN-2025-0001")
    assert (note.invoice.invoice_number, note.amount, note.sync_status) == ("INV-2025-0001", Decimal("10.00"),
                                                                          SyncStatus.PENDING)
    push()
    note.refresh_from_db()
    assert note.sync_status == SyncStatus.SYNCED, note.last_sync_error


def test_the_admin_lists_credit_notes_and_the_dashboard_counts_them(admin_client, zoho):
    note = make_credit_note()
    response = admin_client.get(reverse("admin:zoho_sync_creditnote_changelist"))
    assert response.status_code == 200 and note.number in response.content.decode()
    assert "credit_notes" in entities.entity_argument()["choices"]
    assert entities.entity_name("refunds") == "credit_notes"
    dashboard = admin_client.get(reverse("admin:index")).content.decode()
    assert "credit note" in dashboard.casefold()
