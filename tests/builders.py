"""Builders for test records: plain functions with sensible defaults and keyword overrides."""

from __future__ import annotations

import itertools
from datetime import date
from decimal import Decimal

from django.utils import timezone

from zoho_sync.models import CreditNote, Customer, CustomerService, Invoice, InvoiceLine, Payment, ServicePackage

_seq = itertools.count(1)


def make_customer(**overrides) -> Customer:
    n = next(_seq)
    fields = {
        "account_number": f"CT-2025-{n:05d}",
        "email": f"customer{n}@example.com",
        "first_name": "Ava",
        "last_name": f"Tester{n}",
    }
    fields.update(overrides)
    return Customer.objects.create(**fields)


def make_package(**overrides) -> ServicePackage:
    n = next(_seq)
    fields = {"name": f"Fiber {n}", "plan_code": f"FIBER-{n}", "price": Decimal("39.00")}
    fields.update(overrides)
    return ServicePackage.objects.create(**fields)


def make_service(**overrides) -> CustomerService:
    fields = {"status": CustomerService.Status.ACTIVE, "activated_at": timezone.now()}
    fields.update(overrides)
    if "customer" not in fields:
        fields["customer"] = make_customer()
    if "package" not in fields:
        fields["package"] = make_package()
    return CustomerService.objects.create(**fields)


def make_invoice(*, lines=((Decimal("1"), Decimal("50.00")),), **overrides) -> Invoice:
    """An invoice whose totals match its lines (quantity, unit price pairs)."""
    n = next(_seq)
    subtotal = sum((q * p).quantize(Decimal("0.01")) for q, p in lines)
    fields = {"invoice_number": f"INV-T{n:06d}", "issued_on": date(2026, 11, 1), "subtotal": subtotal,
              "tax_total": Decimal("0.00"), "total": subtotal}
    fields.update(overrides)
    if "customer" not in fields:
        fields["customer"] = make_customer()
    invoice = Invoice.objects.create(**fields)
    for position, (quantity, price) in enumerate(lines, start=1):
        InvoiceLine.objects.create(invoice=invoice, position=position, description=f"Line {position}",
                                   quantity=quantity, unit_price=price)
    return invoice


def make_payment(**overrides) -> Payment:
    n = next(_seq)
    fields = {"reference": f"PAY-T{n:06d}", "amount": Decimal("10.00"), "status": Payment.Status.COMPLETED,
              "paid_at": timezone.now()}
    fields.update(overrides)
    if "customer" not in fields:
        fields["customer"] = fields["invoice"].customer if fields.get("invoice") else make_customer()
    return Payment.objects.create(**fields)


def make_credit_note(**overrides) -> CreditNote:
    """A credit (against `invoice` when given, else the customer keeps it) of a package; a refund with
    kind=refund and `payment`."""
    n = next(_seq)
    fields = {"number": f"CN-T{n:06d}", "amount": Decimal("10.00"), "issued_on": date(2026, 11, 20),
              "reason": "Outage credit"}
    fields.update(overrides)
    if "customer" not in fields:
        owner = fields.get("invoice") or fields.get("payment")
        fields["customer"] = owner.customer if owner is not None else make_customer()
    if "package" not in fields and fields.get("kind") != CreditNote.Kind.REFUND:
        fields["package"] = make_package()
    return CreditNote.objects.create(**fields)
