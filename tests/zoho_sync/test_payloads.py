"""Payload functions: plain objects in, dicts out (no database, no HTTP)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from types import SimpleNamespace as Row

import pytest

from zoho_sync.sync import payloads
from zoho_sync.sync.errors import InvalidLocalData

TODAY = date(2026, 11, 22)


def customer(**kw):
    base = {"first_name": "Ava", "last_name": "Smith", "company_name": "", "account_number": "CT-2025-00002",
            "email": "ava@example.com", "phone": "", "currency_code": "USD", "billing_street": "1 Main St",
            "billing_city": "Austin", "billing_state": "TX", "billing_postal_code": "78701",
            "billing_country": "United States"}
    base.update(kw)
    row = Row(**base)
    row.name = row.company_name or " ".join(p for p in (row.first_name, row.last_name) if p)
    return row


def test_customer_payload_has_a_unique_display_name_and_no_empty_fields():
    payload = payloads.customer_to_zoho(customer())
    assert payload == {"display_name": "Ava Smith (CT-2025-00002)", "first_name": "Ava", "last_name": "Smith",
                       "email": "ava@example.com", "currency_code": "USD",
                       "billing_address": {"street": "1 Main St", "city": "Austin", "state": "TX", "zip": "78701",
                                           "country": "United States"}}
    assert "email" not in payloads.customer_to_zoho(customer(email=""))


@pytest.mark.parametrize(("fields", "message"), [
    ({"email": "ava@"}, "Email address 'ava@' is not valid."),
    ({"first_name": "", "last_name": ""}, "Zoho needs a display name."),
])
def test_customer_problems_are_specific(fields, message):
    with pytest.raises(InvalidLocalData, match=message):
        payloads.customer_to_zoho(customer(**fields))


def service(**kw):
    base = {"customer": Row(zoho_id="9001"), "package": Row(plan_code="FIBER-100"), "quantity": 1, "pk": 12,
            "zoho_reference_id": "CS-12", "activated_at": datetime(2026, 1, 5, tzinfo=UTC), "status": "active"}
    base.update(kw)
    return Row(**base)


def test_subscription_starts_the_day_after_the_last_period_billed_here():
    payload = payloads.subscription_to_zoho(service(last_period_end=date(2026, 12, 4)), today=TODAY)
    assert payload == {"customer_id": "9001", "plan": {"plan_code": "FIBER-100", "quantity": 1},
                       "reference_id": "CS-12", "auto_collect": False, "starts_at": "2026-12-05"}


def test_subscription_never_billed_here_starts_today_not_in_the_past():
    assert payloads.subscription_start(service(last_period_end=None), today=TODAY) == TODAY
    future = service(last_period_end=None, activated_at=datetime(2026, 12, 1, tzinfo=UTC))
    assert payloads.subscription_start(future, today=TODAY) == date(2026, 12, 1)


def test_plan_payload_sends_money_as_numbers():
    package = Row(plan_code="FIBER-100", name="Fiber 100", price=Decimal("39.90"), interval=1,
                  interval_unit="months", description="")
    assert payloads.plan_to_zoho(package, product_id="77") == {
        "plan_code": "FIBER-100", "name": "Fiber 100", "recurring_price": 39.9, "interval": 1,
        "interval_unit": "months", "product_id": "77"}


def invoice(lines, subtotal, total=None, tax=Decimal("0.00")):
    line_rows = [Row(description=d, unit_price=p, quantity=q, amount=(p * q).quantize(Decimal("0.01")),
                     package_id=package and 1, package=package and Row(zoho_product_id=package))
                 for d, q, p, *rest in lines for package in [rest[0] if rest else None]]
    return Row(customer=Row(zoho_id="9001"), invoice_number="INV-1", issued_on=date(2026, 11, 1),
               due_on=date(2026, 11, 15), notes="", subtotal=subtotal, tax_total=tax,
               total=total if total is not None else subtotal, lines=Row(all=lambda: line_rows), status="issued")


def test_invoice_payload_and_total_check():
    good = invoice([("Installation", Decimal("1"), Decimal("99.00")), ("Fiber", Decimal("1"), Decimal("1.00"), "55")],
                   Decimal("100.00"))
    assert payloads.invoice_to_zoho(good, one_off_product_id="77")["invoice_items"] == [
        {"product_id": "77", "name": "Installation", "description": "Installation", "price": 99.0, "quantity": 1.0},
        {"product_id": "55", "name": "Fiber", "description": "Fiber", "price": 1.0, "quantity": 1.0}], \
        "a line selling a package carries its product; any other line the one-off product"
    assert "product_id" not in payloads.invoice_to_zoho(good)["invoice_items"][0], "the dry run: not known yet"
    bad = invoice([("Installation", Decimal("1"), Decimal("99.00"))], Decimal("90.00"))
    with pytest.raises(InvalidLocalData, match=r"subtotal 90.00 does not match the sum of the lines \(99.00\)"):
        payloads.invoice_to_zoho(bad)


def test_payment_is_never_over_applied():
    payment = Row(customer=Row(zoho_id="9001"), method="cash", amount=Decimal("10.00"),
                  paid_at=datetime(2026, 11, 2, tzinfo=UTC), reference="PAY-1", notes="")
    body = payloads.payment_to_zoho(payment, applications=[("5001", Decimal("10.00"))])
    assert body["invoices"] == [{"invoice_id": "5001", "amount_applied": 10.0}] and body["amount"] == 10.0
    with pytest.raises(InvalidLocalData, match="over-apply"):
        payloads.payment_to_zoho(payment, applications=[("5001", Decimal("6")), ("5002", Decimal("5"))])


def test_the_invoice_lookup_accepts_either_name_zoho_gives_the_number():
    """Zoho's list answer names it `number`, its other answers `invoice_number`: a lost answer must be found by
    either, or it becomes a second invoice wherever Zoho does not refuse the number."""
    from zoho_sync.sync.remote import match_one

    keys = ("number", "invoice_number")
    assert match_one([{"invoice_id": "1", "number": "INV-7"}], keys, "inv-7", "invoices")["invoice_id"] == "1"
    assert match_one([{"invoice_id": "2", "invoice_number": "INV-7"}], keys, "INV-7", "invoices")["invoice_id"] == "2"
    assert match_one([{"invoice_id": "3", "number": "", "invoice_number": "INV-7"}], keys, "INV-7", "invoices")
    assert match_one([{"invoice_id": "4", "number": "INV-8"}], keys, "INV-7", "invoices") is None


def test_the_customer_key_is_the_account_number_in_the_display_name():
    assert payloads.account_number_of("Ava Smith (CT-2025-00002)") == "ct-2025-00002"
    assert payloads.account_number_of("Acme (Europe) Ltd (CT-2025-00003) ") == "ct-2025-00003"
    assert payloads.account_number_of("Someone else's customer") == ""
