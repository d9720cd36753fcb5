"""Database constraints, model validation with clear messages, and the sync bookkeeping on save."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from tests.builders import make_customer, make_invoice, make_package, make_payment, make_service
from tests.zoho_sync.test_admin import admin_url, change_form_data
from zoho_sync.models import Customer, CustomerService, Invoice, InvoiceLine, Payment, SyncStatus

pytestmark = pytest.mark.django_db


def integrity_error(fn):
    with pytest.raises(IntegrityError), transaction.atomic():
        fn()


class TestConstraints:
    def test_account_number_is_unique(self):
        make_customer(account_number="CT-2025-00002")
        integrity_error(lambda: make_customer(account_number="CT-2025-00002"))

    def test_invoice_number_and_payment_reference_are_unique(self):
        invoice = make_invoice(invoice_number="INV-1")
        integrity_error(lambda: make_invoice(invoice_number="INV-1"))
        make_payment(reference="PAY-1", invoice=invoice)
        integrity_error(lambda: make_payment(reference="PAY-1"))

    def test_zoho_id_is_unique_but_many_rows_may_have_none(self):
        make_customer(zoho_id=None)
        make_customer(zoho_id=None)
        make_customer(zoho_id="903000000000099")
        integrity_error(lambda: make_customer(zoho_id="903000000000099"))

    def test_negative_and_zero_money_is_refused_by_the_database(self):
        integrity_error(lambda: make_package(price=Decimal("-1.00")))
        integrity_error(lambda: make_payment(amount=Decimal("0.00")))
        integrity_error(lambda: make_payment(amount=Decimal("-5.00")))
        integrity_error(lambda: make_invoice(lines=((Decimal("1"), Decimal("-2.00")),)))

    def test_invoice_total_must_be_subtotal_plus_tax(self):
        integrity_error(lambda: make_invoice(subtotal=Decimal("50.00"), tax_total=Decimal("5.00"),
                                             total=Decimal("50.00")))

    def test_period_invoice_needs_service_and_period(self):
        integrity_error(lambda: make_invoice(kind=Invoice.Kind.SUBSCRIPTION_PERIOD))

    def test_status_timestamps_are_required(self):
        integrity_error(lambda: make_service(status=CustomerService.Status.ACTIVE, activated_at=None))
        integrity_error(lambda: make_service(status=CustomerService.Status.CANCELLED, cancelled_at=None))
        integrity_error(lambda: make_payment(status=Payment.Status.COMPLETED, paid_at=None))

    def test_protected_relations_keep_history(self):
        invoice = make_invoice()
        with pytest.raises(Exception, match="protected"):
            invoice.customer.delete()


class TestValidation:
    def test_invalid_email_is_a_clear_error(self):
        customer = make_customer()
        customer.email = "not-an-email"
        with pytest.raises(ValidationError) as exc:
            customer.full_clean()
        assert "email" in exc.value.message_dict

    def test_blank_email_is_allowed(self):
        make_customer(email="").full_clean()

    def test_customer_needs_some_name(self):
        customer = make_customer(first_name="", last_name="", company_name="")
        with pytest.raises(ValidationError, match="display name"):
            customer.full_clean()

    def test_negative_amounts_are_named(self):
        package = make_package()
        package.price = Decimal("-3.00")
        with pytest.raises(ValidationError, match="cannot be negative"):
            package.full_clean()

    @pytest.mark.parametrize(("make", "changes", "field", "message"), [
        (make_package, {"interval": 0}, "interval", "The interval must be at least 1."),
        (make_service, {"quantity": 0}, "quantity", "The quantity must be at least 1."),
        (make_invoice, {"period_start": date(2025, 3, 1), "period_end": date(2025, 2, 28)}, "period_end",
         "The period ends before it starts."),
    ])
    def test_check_constraints_without_a_field_validator_have_a_readable_message(self, make, changes, field,
                                                                                  message):
        """The field allows the value (0 is a PositiveIntegerField's), the constraint does not: clean() says why,
        and the constraint's own "Constraint ... is violated." never reaches a person."""
        obj = make()
        for name, value in changes.items():
            setattr(obj, name, value)
        with pytest.raises(ValidationError) as exc:
            obj.full_clean()
        assert exc.value.message_dict == {field: [message]}

    def test_payment_larger_than_invoice_balance(self):
        invoice = make_invoice(lines=((Decimal("1"), Decimal("100.00")),))
        make_payment(invoice=invoice, amount=Decimal("60.00"))
        too_much = Payment(reference="PAY-X", customer=invoice.customer, invoice=invoice, amount=Decimal("40.01"),
                           status=Payment.Status.COMPLETED, paid_at=timezone.now())
        with pytest.raises(ValidationError) as exc:
            too_much.full_clean()
        assert exc.value.message_dict["amount"] == [
            f"The payment of 40.01 is larger than the balance of invoice {invoice.invoice_number} (40.00 due)."
        ]
        too_much.amount = Decimal("40.00")
        too_much.full_clean()

    def test_editing_a_payment_does_not_count_itself_against_the_balance(self):
        invoice = make_invoice(lines=((Decimal("1"), Decimal("100.00")),))
        payment = make_payment(invoice=invoice, amount=Decimal("100.00"))
        payment.full_clean()

    def test_payment_for_another_customers_invoice(self):
        invoice = make_invoice()
        payment = Payment(reference="PAY-Y", customer=make_customer(), invoice=invoice, amount=Decimal("1.00"))
        with pytest.raises(ValidationError, match="another customer"):
            payment.full_clean()

    def test_invoice_total_disagreeing_with_lines(self):
        invoice = make_invoice(lines=((Decimal("2"), Decimal("10.00")),))
        assert invoice.totals_problems() == []
        InvoiceLine.objects.create(invoice=invoice, position=2, description="Extra", unit_price=Decimal("5.00"))
        assert invoice.totals_problems() == ["The subtotal 20.00 does not match the sum of the lines (25.00)."]

    def test_line_amount_is_quantity_times_price_rounded(self):
        invoice = make_invoice(lines=((Decimal("3"), Decimal("0.33")),))
        assert invoice.lines.get().amount == Decimal("0.99")


class TestSyncBookkeeping:
    def test_new_rows_are_pending(self):
        assert make_customer().sync_status == SyncStatus.PENDING

    def test_local_change_marks_pending_and_resets_retry(self):
        customer = make_customer()
        Customer.objects.filter(pk=customer.pk).update(
            sync_status=SyncStatus.FAILED, sync_attempts=3, next_retry_at=timezone.now()
        )
        customer.refresh_from_db()
        customer.phone = "+1-555-000-0000"
        customer.save(update_fields=["phone"])
        customer.refresh_from_db()
        assert (customer.sync_status, customer.sync_attempts, customer.next_retry_at) == (SyncStatus.PENDING, 0, None)

    def test_bookkeeping_only_save_does_not_requeue(self):
        customer = make_customer()
        customer.sync_status = SyncStatus.SYNCED
        customer.zoho_id = "903000000000001"
        customer.save(update_fields=["sync_status", "zoho_id"])
        customer.refresh_from_db()
        assert customer.sync_status == SyncStatus.SYNCED

    def test_reference_id_is_the_natural_key(self):
        service = make_service()
        assert service.zoho_reference_id == f"CS-{service.pk}"


class TestOddInput:
    """Issue 18: what no field validator held (NUL, ISO 4217) and the order of a service's dates."""

    def test_nul_in_any_text_field_is_named_by_model_validation(self):
        customer = make_customer()
        customer.last_name, customer.billing_city = "Love\x00lace", "\x00"
        with pytest.raises(ValidationError) as exc:
            customer.full_clean()
        assert exc.value.message_dict == {"last_name": ["Null characters are not allowed."],
                                          "billing_city": ["Null characters are not allowed."]}
        line = make_invoice().lines.get()
        line.description = "Fiber\x00"
        with pytest.raises(ValidationError) as exc:
            line.full_clean()
        assert exc.value.message_dict == {"description": ["Null characters are not allowed."]}

    @pytest.mark.parametrize("code", ["XYZ", "XXX", "XTS", "XAU", "HRK", "BGN"])
    def test_a_currency_code_outside_iso_4217_in_use_is_refused(self, code):
        payment = make_payment()
        payment.currency_code = code
        with pytest.raises(ValidationError) as exc:
            payment.full_clean()
        assert exc.value.message_dict == {"currency_code": [
            f"{code} is not an ISO 4217 currency code in use: write one like USD, EUR or GBP."]}

    def test_a_malformed_currency_code_gets_one_message(self):
        invoice = make_invoice()
        invoice.currency_code = "usd"
        with pytest.raises(ValidationError) as exc:
            invoice.full_clean()
        assert exc.value.message_dict == {"currency_code": ["Use a three-letter ISO 4217 currency code, like USD."]}

    @pytest.mark.parametrize("code", ["USD", "EUR", "GBP", "JPY", "CHF", "INR", "XOF", "XCG", "ZWG", "SLE"])
    def test_currency_codes_in_use_pass(self, code):
        customer = make_customer(currency_code=code)
        customer.full_clean()

    def test_the_currency_table_holds_three_capital_letters_each(self):
        from zoho_sync.validation import CURRENCY_CODES

        assert all(len(code) == 3 and code.isascii() and code.isupper() for code in CURRENCY_CODES)
        assert len(CURRENCY_CODES) > 150

    def test_a_service_cancelled_before_its_activation_is_refused(self):
        service = make_service(activated_at=timezone.now())
        service.status, service.cancelled_at = CustomerService.Status.CANCELLED, service.activated_at - timedelta(1)
        with pytest.raises(ValidationError) as exc:
            service.full_clean()
        assert exc.value.message_dict == {"cancelled_at": [
            "Cancelled at is before activated at: a service is cancelled after it was activated."]}
        service.cancelled_at = service.activated_at
        service.full_clean()


class TestAdminRefusesOddInput:
    """The same refusals through the admin's own pages (the Django test client posting its forms)."""

    def test_currency_xyz(self, admin_client):
        response = admin_client.post(admin_url(Customer, "add"), {
            "account_number": "CT-2026-00001", "first_name": "Ava", "account_type": "individual",
            "status": "active", "currency_code": "XYZ"})
        assert response.status_code == 200
        assert response.context["adminform"].form.errors == {"currency_code": [
            "XYZ is not an ISO 4217 currency code in use: write one like USD, EUR or GBP."]}
        assert not Customer.objects.exists()

    @pytest.mark.parametrize("amount", ["1e3", "1E+1", "\u0664\u0669.00", "\uff14\uff19.00"])
    def test_money_that_is_not_a_plain_decimal(self, admin_client, amount):
        invoice = make_invoice(lines=((Decimal("1"), Decimal("2000.00")),))
        data = {"reference": "PAY-ADMIN-1", "customer": invoice.customer_id, "invoice": invoice.pk, "amount": amount,
                "currency_code": "USD", "method": "cash", "status": "completed", "paid_at_0": "2026-11-02",
                "paid_at_1": "10:00:00", "notes": "", "origin": "local", "refunded_amount": "0.00"}
        response = admin_client.post(admin_url(Payment, "add"), data)
        assert response.status_code == 200
        assert response.context["adminform"].form.errors["amount"] == [
            "Enter a plain decimal number written with the digits 0-9, like 1234.50 (not 1e3)."]
        assert not Payment.objects.exists()
        response = admin_client.post(admin_url(Payment, "add"), {**data, "amount": "1000.00"})
        assert response.status_code == 302
        assert Payment.objects.get().amount == Decimal("1000.00")

    def test_a_line_quantity_in_exponent_form(self, admin_client):
        invoice = make_invoice(lines=((Decimal("1"), Decimal("10.00")),))
        url = admin_url(Invoice, "change", invoice.pk)
        data = change_form_data(admin_client.get(url))
        quantity = next(k for k in data if k.endswith("-quantity"))
        response = admin_client.post(url, {**data, quantity: "1e0"})
        assert response.status_code == 200
        assert "Enter a plain decimal number written with the digits 0-9" in response.content.decode()

    def test_a_service_cancelled_before_its_activation(self, admin_client):
        service = make_service(reference="SVC-1")
        url = admin_url(CustomerService, "change", service.pk)
        data = change_form_data(admin_client.get(url))
        activated = service.activated_at.astimezone(timezone.get_current_timezone()).date()
        response = admin_client.post(url, {**data, "status": "cancelled",
                                           "cancelled_at_0": str(activated - timedelta(1)), "cancelled_at_1": "10:00"})
        assert response.status_code == 200
        assert response.context["adminform"].form.errors == {"cancelled_at": [
            "Cancelled at is before activated at: a service is cancelled after it was activated."]}
        assert CustomerService.objects.get(pk=service.pk).status == CustomerService.Status.ACTIVE
