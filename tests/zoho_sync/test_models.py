"""Database constraints, model validation with clear messages, and the sync bookkeeping on save."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from tests.builders import make_customer, make_invoice, make_package, make_payment, make_service
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
