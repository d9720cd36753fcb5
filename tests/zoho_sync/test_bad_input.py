"""Bad input that reaches the engine through the ORM (scripts, imports, shells) gets the admin form's specific
message on the record and in the sync log, and nothing Zoho would refuse (or silently mis-book) is sent."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import DataError, connection, transaction

from tests.builders import make_customer, make_invoice, make_payment
from zoho_sync import services
from zoho_sync.models import Customer, Invoice, InvoiceLine, Payment, SyncLog, SyncState, SyncStatus

pytestmark = pytest.mark.django_db


def failure_of(obj) -> tuple[str, str, str]:
    obj.refresh_from_db()
    log = SyncLog.objects.filter(entity=obj._meta.model_name, object_pk=str(obj.pk)).latest("pk")
    return obj.sync_state, obj.last_sync_error, log.message


def test_an_over_applied_payment_fails_with_the_forms_message(zoho):
    invoice = make_invoice(lines=((Decimal("1"), Decimal("100.00")),))
    payment = make_payment(invoice=invoice, amount=Decimal("500.00"))  # the admin form refuses this
    services.sync_pending()
    state, error, logged = failure_of(payment)
    expected = f"The payment of 500.00 is larger than the balance of invoice {invoice.invoice_number} (100.00 due)."
    assert state == SyncState.NEEDS_PERSON and expected in error and expected in logged
    assert Payment.objects.get(pk=payment.pk).last_error_kind == "invalid_data"
    assert zoho.requests("POST", "/payments") == [], "no credit of 400 was booked in Zoho"
    assert Invoice.objects.get(pk=invoice.pk).sync_status == SyncStatus.SYNCED, "the rest went on"


@pytest.mark.parametrize(("field", "value"), [("unit_price", "10.12345"), ("quantity", "1.005")])
def test_a_line_with_more_than_two_decimals_is_refused_not_rounded(field, value):
    invoice = make_invoice()
    values = {"unit_price": Decimal("10.00"), "quantity": Decimal("3"), field: Decimal(value)}
    with pytest.raises(ValidationError) as refused, transaction.atomic():
        InvoiceLine.objects.create(invoice=invoice, description="Cable", **values)
    assert f"{value} has more than two decimal places" in str(refused.value)
    assert field.replace("_", " ").capitalize() in str(refused.value), "the message names the field"
    assert invoice.lines.count() == 1, "nothing was stored"


@pytest.mark.parametrize("amount", ["30.36999", 30.36999, "12.3x"])
def test_a_payment_amount_that_would_be_rounded_or_is_no_number_is_refused(amount):
    customer = make_customer()
    with pytest.raises(ValidationError) as refused, transaction.atomic():
        Payment.objects.create(reference="PAY-ROUND", customer=customer, amount=amount)
    assert str(refused.value).count("Amount") == 1 and "30.37" not in str(refused.value)
    assert not Payment.objects.filter(reference="PAY-ROUND").exists()


def test_a_changed_amount_is_refused_on_save_too():
    payment = make_payment(amount=Decimal("30.36"))
    payment.amount = Decimal("30.369")
    with pytest.raises(ValidationError, match=r"Amount 30\.369 has more than two decimal places"):
        payment.save()
    assert Payment.objects.get(pk=payment.pk).amount == Decimal("30.36")


def test_a_name_longer_than_its_column_is_refused_before_zoho(zoho):
    if connection.vendor == "postgresql":  # PostgreSQL itself refuses to store it
        with pytest.raises(DataError), transaction.atomic():
            make_customer(first_name="A" * 10_000)
        return
    customer = make_customer(first_name="A" * 10_000)  # SQLite stores it
    services.sync_pending()
    state, error, logged = failure_of(customer)
    assert state == SyncState.NEEDS_PERSON
    expected = "First name: Ensure this value has at most 100 characters (it has 10000)."
    assert expected in error and expected in logged
    assert zoho.requests("POST", "/customers") == []


def test_an_invalid_email_saved_through_the_orm_fails_with_the_forms_words(zoho):
    customer = make_customer(email="ava.example.com")
    services.sync_pending()
    state, error, _ = failure_of(customer)
    assert state == SyncState.NEEDS_PERSON and "Email address 'ava.example.com' is not valid." in error
    form_field = Customer._meta.get_field("email").formfield()
    with pytest.raises(ValidationError, match=r"Email address 'ava\.example\.com' is not valid\."):
        form_field.clean("ava.example.com")


def test_a_fix_shows_changed_since_the_last_failure_and_the_log_keeps_the_error(zoho):
    customer = make_customer(email="broken")
    services.sync_pending()
    customer = Customer.objects.get(pk=customer.pk)
    customer.email = "fixed@example.com"
    customer.save()
    customer.refresh_from_db()
    assert customer.sync_state == SyncState.PENDING
    assert customer.last_sync_error.startswith("Changed since the last failure") and not customer.last_error_kind
    assert "Email address 'broken' is not valid." in SyncLog.objects.get(entity="customer").message
    services.sync_pending()
    customer.refresh_from_db()
    assert customer.sync_state == SyncState.SYNCED and customer.last_sync_error == ""


# --- issue 18: NUL and currency codes through the ORM -------------------------------------------------------------
def test_a_nul_in_a_name_is_a_validation_error_naming_the_field_not_a_data_error():
    """PostgreSQL refuses NUL with a DataError that names nothing (SQLite would store it): save() names the field."""
    with pytest.raises(ValidationError) as refused, transaction.atomic():
        make_customer(account_number="CT-2026-00001", first_name="A\x00va")
    assert refused.value.message_dict == {
        "first_name": ["First name holds a NUL character (\\x00): Null characters are not allowed."]}
    assert not Customer.objects.filter(account_number="CT-2026-00001").exists()
    customer = make_customer(last_name="Lovelace")
    customer.last_name = "Love\x00lace"
    with pytest.raises(ValidationError, match="Last name holds a NUL character"), transaction.atomic():
        customer.save(update_fields=["last_name"])
    with pytest.raises(ValidationError, match="Last name holds a NUL character"), transaction.atomic():
        customer.save()
    assert Customer.objects.get(pk=customer.pk).last_name == "Lovelace"
    invoice = make_invoice()
    with pytest.raises(ValidationError, match="Description holds a NUL character"), transaction.atomic():
        InvoiceLine.objects.create(invoice=invoice, position=2, description="Cable\x00", unit_price=Decimal("1.00"))
    assert invoice.lines.count() == 1


def test_the_nul_check_looks_only_at_the_fields_a_save_writes():
    """The engine's bookkeeping saves and a save of other fields write no NUL, so they are not refused for one
    held in memory."""
    customer = make_customer(phone="1")
    customer.first_name = "A\x00va"  # never written below
    customer.sync_status, customer.last_sync_error = SyncStatus.FAILED, "Zoho said no"
    customer.save(update_fields=["sync_status", "last_sync_error"])
    customer.phone = "2"
    customer.save(update_fields=["phone"])
    stored = Customer.objects.get(pk=customer.pk)
    assert (stored.phone, stored.first_name, stored.sync_status) == ("2", "Ava", SyncStatus.PENDING)
    assert "\x00" not in stored.first_name


def test_a_currency_zoho_does_not_know_fails_before_zoho_with_the_forms_words(zoho):
    customer = make_customer(currency_code="XYZ")  # saved through the ORM, which runs no validation
    services.sync_pending()
    state, error, logged = failure_of(customer)
    expected = "XYZ is not an ISO 4217 currency code in use: write one like USD, EUR or GBP."
    assert state == SyncState.NEEDS_PERSON and expected in error and expected in logged
    assert zoho.requests("POST", "/customers") == []
