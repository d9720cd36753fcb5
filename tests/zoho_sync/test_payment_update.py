"""A payment changed here after it reached Zoho is updated there with PUT /payments/{id} (issue 18, item 9), end
to end: the admin's change form and "Push now" over Django's HTTP stack, the engine, the sandbox over HTTP, the
database. Where the amount changes the payment is re-applied, never over an invoice's balance as Zoho holds it
(plus what this payment applied there already); a change that would over-apply says why and sends nothing."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import pytest
from django.contrib import admin

from tests.builders import make_invoice, make_payment
from tests.zoho_sync.test_admin import admin_url, change_form_data
from tests.zoho_sync.test_concurrency import Worker
from zoho_sync import services
from zoho_sync.models import Invoice, Payment, SyncLog, SyncState, SyncStatus
from zoho_sync.reconcile import reconcile
from zoho_sync.sync.plan import plan_backfill
from zoho_sync.sync.specs import PAYMENT

pytestmark = pytest.mark.django_db


def pushed_payment(zoho, *, invoice_total: str = "100.00", amount: str = "40.00", **fields) -> Payment:
    """A payment of one of our invoices, both in Zoho."""
    invoice = make_invoice(lines=((Decimal("1"), Decimal(invoice_total)),))
    payment = make_payment(invoice=invoice, amount=Decimal(amount), notes="At the counter", **fields)
    services.sync_pending(entity="all")
    payment.refresh_from_db()
    assert payment.sync_state == SyncState.SYNCED and payment.zoho_id
    return payment


def zoho_payment(zoho, payment: Payment) -> dict:
    (record,) = [p for p in zoho.records("payments") if p["payment_id"] == payment.zoho_id]
    return record


def zoho_invoice(zoho, invoice: Invoice) -> dict:
    (record,) = [i for i in zoho.records("invoices") if i["invoice_id"] == invoice.zoho_id]
    return record


def edit_in_admin(client, payment: Payment, **changes: str) -> None:
    url = admin_url(Payment, "change", payment.pk)
    response = client.post(url, {**change_form_data(client.get(url)), **changes})
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else response


def push_now(client, payment: Payment) -> list[str]:
    response = client.post(admin_url(Payment, "changelist"),
                           {"action": "push_now", admin.helpers.ACTION_CHECKBOX_NAME: [payment.pk]}, follow=True)
    assert response.status_code == 200
    return [str(m.message) for m in response.context["messages"]]


def test_a_description_changed_in_the_admin_is_put_to_zoho(zoho, admin_client):
    payment = pushed_payment(zoho)
    edit_in_admin(admin_client, payment, notes="Paid at the counter, receipt 42")
    assert "1 record(s) pushed to Zoho." in push_now(admin_client, payment)

    payment.refresh_from_db()
    assert payment.sync_state == SyncState.SYNCED and payment.last_sync_error == ""
    assert len(zoho.records("payments")) == 1, "updated, never recorded twice"
    record = zoho_payment(zoho, payment)
    assert record["description"] == "Paid at the counter, receipt 42"
    assert (record["amount"], record["invoices"][0]["amount_applied"]) == (40, 40), "the money did not move"
    put = zoho.last_request("PUT", f"/payments/{payment.zoho_id}")
    assert put["json"]["invoices"] == [{"invoice_id": payment.invoice.zoho_id, "amount_applied": 40.0}]
    log = SyncLog.objects.filter(entity="payment", object_pk=str(payment.pk)).latest("id")
    assert (log.action, log.status, log.message) == ("update", "success", "Updated in Zoho.")
    assert json.loads(log.request_body)["description"] == "Paid at the counter, receipt 42"
    assert json.loads(log.response_body)["payment_id"] == payment.zoho_id, "Zoho's answer is kept in the log"

    # Pushed again unchanged: nothing is sent.
    before = len(zoho.requests(path="/payments"))
    services.sync_object(entity="payment", pk=payment.pk)
    assert len(zoho.requests(path="/payments")) == before


def test_a_cleared_description_is_cleared_in_zoho(zoho):
    payment = pushed_payment(zoho)
    payment.notes = ""
    payment.save()
    services.sync_pending(entity="payment")
    payment.refresh_from_db()
    assert payment.sync_state == SyncState.SYNCED
    assert zoho_payment(zoho, payment)["description"] == ""


def test_a_changed_amount_re_applies_the_payment_and_the_invoice_follows(zoho, admin_client):
    payment = pushed_payment(zoho)
    invoice = payment.invoice
    assert (zoho_invoice(zoho, invoice)["status"], zoho_invoice(zoho, invoice)["balance"]) == ("partially_paid", 60)

    edit_in_admin(admin_client, payment, amount="100.00")  # the whole invoice now
    push_now(admin_client, payment)
    payment.refresh_from_db()
    assert payment.sync_state == SyncState.SYNCED
    record = zoho_payment(zoho, payment)
    assert (record["amount"], record["invoices"][0]["amount_applied"]) == (100, 100)
    held = zoho_invoice(zoho, invoice)
    assert (held["status"], held["payment_made"], held["balance"]) == ("paid", 100, 0)
    invoice.refresh_from_db()
    assert (invoice.status, invoice.balance_due) == ("paid", Decimal("0.00")), "Zoho's answer is taken here too"

    payment.amount = Decimal("25.50")
    payment.save()
    services.sync_pending(entity="payment")
    held = zoho_invoice(zoho, invoice)
    assert (held["status"], held["payment_made"], held["balance"]) == ("partially_paid", 25.5, 74.5)
    invoice.refresh_from_db()
    assert (invoice.status, invoice.balance_due) == ("partially_paid", Decimal("74.50"))
    assert len(zoho.records("payments")) == 1
    customer = next(c for c in zoho.records("customers") if c["customer_id"] == payment.customer.zoho_id)
    assert (customer["outstanding"], customer["unused_credits"]) == (74.5, 0)


def test_an_amount_that_would_over_apply_says_why_and_changes_nothing_in_zoho(zoho):
    payment = pushed_payment(zoho)
    invoice = payment.invoice
    zoho.pay_invoice(invoice.zoho_id, amount=50)  # paid in Zoho meanwhile (not mirrored here): 10 left there
    before = (zoho_payment(zoho, payment), zoho_invoice(zoho, invoice))

    payment.amount = Decimal("70.00")  # fits the invoice as held here (100), not as Zoho holds it
    payment.save()
    services.sync_pending(entity="payment")
    payment.refresh_from_db()
    assert payment.sync_state == SyncState.NEEDS_PERSON
    message = payment.last_sync_error
    assert invoice.invoice_number in message and payment.reference in message
    assert "Applying 70.00" in message and "balance there is 10.00" in message and "40.00" in message
    assert "50.00 at most" in message and "Nothing was changed in Zoho" in message
    assert zoho.requests("PUT", "/payments") == []
    assert (zoho_payment(zoho, payment), zoho_invoice(zoho, invoice)) == before

    payment.amount = Decimal("50.00")  # what fits: pushed once the person corrects it
    payment.save()
    services.sync_pending(entity="payment")
    payment.refresh_from_db()
    assert payment.sync_state == SyncState.SYNCED
    held = zoho_invoice(zoho, invoice)
    assert (held["status"], held["balance"]) == ("paid", 0)


@pytest.mark.django_db(transaction=True)
def test_a_balance_that_shrinks_during_the_put_is_refused_by_zoho_and_left_for_a_person(zoho):
    """Zoho's balance is read before the PUT; should a payment land in Zoho in between, Zoho's own refusal
    (PAYMENT_OVER_APPLIED) is the record's error and nothing moves."""
    payment = pushed_payment(zoho)
    invoice = payment.invoice
    payment.amount = Decimal("70.00")
    payment.save()
    hold = zoho.hold_next("PUT", "/payments", when="before")
    worker = Worker(services.sync_object, entity="payment", pk=payment.pk)
    assert hold.wait_arrived(), "the update never reached Zoho"
    zoho.pay_invoice(invoice.zoho_id, amount=50)  # 10 left there: 40 + 10 < 70
    before = zoho_invoice(zoho, invoice)
    hold.release()
    worker.finish()

    payment.refresh_from_db()
    assert payment.sync_state == SyncState.NEEDS_PERSON
    assert "exceeds the payment amount or invoice balance" in payment.last_sync_error
    assert zoho_payment(zoho, payment)["amount"] == 40 and zoho_invoice(zoho, invoice) == before


def test_a_payment_refunded_in_zoho_is_not_edited(zoho):
    payment = pushed_payment(zoho)
    zoho.refund_payment(payment.zoho_id, amount=10)
    payment.notes = "Corrected"
    payment.save()
    services.sync_pending(entity="payment")
    payment.refresh_from_db()
    assert payment.sync_state == SyncState.NEEDS_PERSON
    assert "10.00 refunded" in payment.last_sync_error and "Nothing was changed in Zoho" in payment.last_sync_error
    assert zoho.requests("PUT", "/payments") == []


def test_a_payment_with_no_invoice_keeps_its_invoices_and_gives_back_from_the_last(zoho):
    older = make_invoice(lines=((Decimal("1"), Decimal("30.00")),), issued_on=date(2026, 10, 1))
    newer = make_invoice(customer=older.customer, lines=((Decimal("1"), Decimal("50.00")),))
    payment = make_payment(customer=older.customer, amount=Decimal("60.00"))
    services.sync_pending(entity="all")
    for record in (older, newer, payment):
        record.refresh_from_db()
    applied = {e["invoice_id"]: e["amount_applied"] for e in zoho_payment(zoho, payment)["invoices"]}
    assert applied == {older.zoho_id: 30, newer.zoho_id: 30}

    payment.amount = Decimal("40.00")  # 20 less: taken from the newer invoice
    payment.save()
    services.sync_pending(entity="payment")
    applied = {e["invoice_id"]: e["amount_applied"] for e in zoho_payment(zoho, payment)["invoices"]}
    assert applied == {older.zoho_id: 30, newer.zoho_id: 10}
    assert zoho_invoice(zoho, newer)["balance"] == 40

    payment.amount = Decimal("90.00")  # 50 more: the newer invoice's 40, then 10 as credit
    payment.save()
    services.sync_pending(entity="payment")
    payment.refresh_from_db()
    assert payment.sync_state == SyncState.SYNCED
    applied = {e["invoice_id"]: e["amount_applied"] for e in zoho_payment(zoho, payment)["invoices"]}
    assert applied == {older.zoho_id: 30, newer.zoho_id: 50}
    customer = next(c for c in zoho.records("customers") if c["customer_id"] == payment.customer.zoho_id)
    assert (customer["outstanding"], customer["unused_credits"]) == (0, 10)
    log = SyncLog.objects.filter(entity="payment", object_pk=str(payment.pk)).latest("id")
    assert "10.00 stays with the customer as credit" in log.message


def test_reconciliation_repairs_a_payment_amount_by_pushing_it(zoho):
    payment = pushed_payment(zoho)
    Payment.objects.filter(pk=payment.pk).update(amount=Decimal("45.00"))  # changed here, not pushed yet
    report = reconcile(specs=(PAYMENT,))
    assert [(d.kind, d.field) for d in report.drift] == [("amount", "amount")]
    repaired = reconcile(specs=(PAYMENT,), repair=True)
    assert [d.repaired for d in repaired.drift] == ["pushed"]
    assert zoho_payment(zoho, payment)["amount"] == 45
    assert reconcile(specs=(PAYMENT,)).drift == []
    assert Payment.objects.get(pk=payment.pk).sync_status == SyncStatus.SYNCED


def test_the_dry_run_counts_the_calls_an_update_makes(zoho):
    payment = pushed_payment(zoho)
    payment.notes = "Corrected"
    payment.save()
    (planned,) = plan_backfill(specs=(PAYMENT,)).entities
    assert (planned.update, planned.calls) == (1, 2)
    before = len([r for r in zoho.requests() if r.get("api_path")])
    services.sync_pending(entity="payment")
    sent = [(r["method"], r["api_path"]) for r in zoho.requests()[before:] if r.get("api_path")]
    assert [s for s in sent if s[1].startswith("/payments/")] == [("GET", f"/payments/{payment.zoho_id}"),
                                                                ("PUT", f"/payments/{payment.zoho_id}")]


def test_a_nan_balance_on_an_open_invoice_in_zoho_fails_that_payment_only(zoho):
    invoice = make_invoice(lines=((Decimal("1"), Decimal("30.00")),))
    paid = make_invoice(lines=((Decimal("1"), Decimal("15.00")),))
    services.sync_pending(entity="all")
    invoice.refresh_from_db()
    zoho.edit_record("invoices", invoice.zoho_id, {"balance": float("nan")})
    payment = make_payment(customer=invoice.customer, amount=Decimal("20.00"))
    other = make_payment(invoice=paid, amount=Decimal("15.00"))

    services.sync_pending(entity="all")  # the run goes on past the payment it cannot place
    payment.refresh_from_db()
    other.refresh_from_db()
    assert payment.sync_state == SyncState.NEEDS_PERSON and not payment.zoho_id
    assert "balance" in payment.last_sync_error and "nan" in payment.last_sync_error.lower()
    assert other.sync_state == SyncState.SYNCED
