"""`manage.py zoho_import`: columns and their messages, all or nothing, dry runs, reruns, the sync bookkeeping."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from tests.builders import make_customer
from zoho_sync import importing
from zoho_sync.models import Customer, CustomerService, Invoice, InvoiceLine, Payment, ServicePackage, SyncStatus
from zoho_sync.models.base import CHANGED_SINCE_FAILURE

pytestmark = pytest.mark.django_db


def arabic(text: str) -> str:
    """The text with its digits 0-9 written as Arabic-Indic digits (int("١٢٣") is 123)."""
    return text.translate(str.maketrans("0123456789", "".join(chr(0x660 + n) for n in range(10))))


def fullwidth(text: str) -> str:
    return text.translate(str.maketrans("0123456789", "".join(chr(0xFF10 + n) for n in range(10))))


ORDER = ("customers", "service_packages", "customer_services", "invoices", "payments")


def template_rows(entity: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(importing.template(importing.entity_named(entity)))))


def csv_text(rows: list[dict[str, str]], header: list[str] | None = None) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=header or list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def run(tmp_path, entity: str, text: str, *args: str) -> tuple[str, int]:
    """Run the command on `text`; return its output (with the error line, if any) and its exit code."""
    path = tmp_path / f"{entity}.csv"
    path.write_text(text, encoding="utf-8")
    out = io.StringIO()
    try:
        call_command("zoho_import", "--entity", entity, str(path), *args, stdout=out, stderr=io.StringIO())
    except CommandError as exc:
        return out.getvalue() + str(exc), exc.returncode
    return out.getvalue(), 0


def import_templates(tmp_path, *entities: str) -> None:
    for entity in entities:
        output, code = run(tmp_path, entity, importing.template(importing.entity_named(entity)))
        assert code == 0, output


def with_cells(entity: str, **cells: str) -> str:
    """The entity's template with some cells replaced (on every row of an invoice)."""
    return csv_text([{**row, **cells} for row in template_rows(entity)])


def snapshot(model) -> list[tuple]:
    return list(model.objects.order_by("pk").values_list("pk", "sync_version", "sync_status", "updated_at"))


# --- templates ---------------------------------------------------------------------------------------------------
def test_the_templates_import_cleanly_in_dependency_order(tmp_path):
    import_templates(tmp_path, *ORDER)
    service = CustomerService.objects.get(reference="SVC-0001")
    assert service.customer.account_number == "CT-2025-00001" and service.package.plan_code == "FIBER-100"
    invoice = Invoice.objects.get(invoice_number="INV-2025-0001")
    assert [(x.position, x.amount, x.package_id is not None) for x in invoice.lines.all()] == [
        (1, Decimal("39.00"), True), (2, Decimal("10.00"), False)]
    assert invoice.totals_problems() == []
    assert Payment.objects.get(reference="PAY-2025-0001").invoice == invoice
    for model in (Customer, ServicePackage, CustomerService, Invoice, Payment):
        assert list(model.objects.values_list("sync_status", "sync_version")) == [(SyncStatus.PENDING, 0)]


def test_template_to_stdout_and_to_a_file(tmp_path):
    out = io.StringIO()
    call_command("zoho_import", "--entity", "customers", "--template", stdout=out)
    assert out.getvalue().splitlines()[0].startswith("account_number,email,first_name")
    assert len(out.getvalue().splitlines()) == 2
    target = tmp_path / "t.csv"
    call_command("zoho_import", "--entity", "plans", "--template", str(target), stdout=io.StringIO())
    assert target.read_text().startswith("plan_code,name,description,price")


def test_help_documents_every_column():
    from zoho_sync.management.commands.zoho_import import Command

    text = Command().create_parser("manage.py", "zoho_import").format_help()
    for entity in importing.ENTITIES.values():
        for column in entity.all_columns:
            assert column.name in text
    assert "price (required; a plain decimal, at most 2 places" in text
    assert "issued_on (required; an ISO date, YYYY-MM-DD)" in text


# --- every column's bad values -------------------------------------------------------------------------------------
BAD_CELLS = [
    ("customers", {"account_number": ""}, "account_number: This field is required. The cell is empty."),
    ("customers", {"account_number": "ct 1"},
     "account_number: Account numbers use capital letters, digits and dashes, like CT-2025-00002."),
    ("customers", {"account_number": "C" * 33},
     "account_number: Ensure this value has at most 32 characters (it has 33)."),
    ("customers", {"email": "ava@@example"}, "email: Email address 'ava@@example' is not valid."),
    ("customers", {"first_name": "A" * 101}, "first_name: Ensure this value has at most 100 characters (it has 101)."),
    ("customers", {"last_name": "L" * 101}, "last_name: Ensure this value has at most 100 characters (it has 101)."),
    ("customers", {"company_name": "C" * 201},
     "company_name: Ensure this value has at most 200 characters (it has 201)."),
    ("customers", {"first_name": "", "last_name": ""},
     "Give a first name, a last name or a company name: Zoho needs a display name."),
    ("customers", {"phone": "1" * 41}, "phone: Ensure this value has at most 40 characters (it has 41)."),
    ("customers", {"account_type": "vip"},
     "account_type: Select a valid choice. vip is not one of the available choices. Write one of individual, "
     "business, internal_test."),
    ("customers", {"status": "gone"},
     "status: Select a valid choice. gone is not one of the available choices. Write one of active, suspended, "
     "closed."),
    ("customers", {"billing_street": "s" * 256}, "billing_street: Ensure this value has at most 255 characters"),
    ("customers", {"billing_city": "c" * 101}, "billing_city: Ensure this value has at most 100 characters"),
    ("customers", {"billing_state": "s" * 101}, "billing_state: Ensure this value has at most 100 characters"),
    ("customers", {"billing_postal_code": "9" * 21},
     "billing_postal_code: Ensure this value has at most 20 characters"),
    ("customers", {"billing_country": "c" * 101}, "billing_country: Ensure this value has at most 100 characters"),
    ("customers", {"currency_code": "usd"}, "currency_code: Use a three-letter ISO 4217 currency code, like USD."),
    ("customers", {"email": "x" * 20_000}, "email: the cell is 20000 characters long; a cell holds at most 10000."),
    ("service_packages", {"plan_code": "fiber 100"},
     "plan_code: Plan codes use letters, digits, dashes and underscores only (Zoho keys plans by it)."),
    ("service_packages", {"name": ""}, "name: This field is required. The cell is empty."),
    ("service_packages", {"price": "abc"}, "price: Enter a number. The cell holds 'abc'"),
    ("service_packages", {"price": "12.345"},
     "price: Ensure that there are no more than 2 decimal places. The cell holds '12.345'"),
    ("service_packages", {"price": "$12"}, "price: Enter a number. The cell holds '$12'"),
    ("service_packages", {"price": "1,200.00"}, "price: Enter a number. The cell holds '1,200.00'"),
    ("service_packages", {"price": "-1.00"}, "price: Amounts cannot be negative (got -1.00)."),
    ("service_packages", {"price": "12345678901.00"}, "price: Ensure that there are no more than 12 digits in total."),
    ("service_packages", {"interval": "monthly"},
     "interval: Enter a whole number. The cell holds 'monthly'; write a whole number."),
    ("service_packages", {"interval": "0"}, "interval: The interval must be at least 1."),
    ("service_packages", {"interval_unit": "days"},
     "interval_unit: Select a valid choice. days is not one of the available choices. Write one of weeks, "
     "months, years."),
    ("service_packages", {"is_active": "maybe"}, "is_active 'maybe' is not true or false."),
    ("customer_services", {"reference": ""}, "reference: This field is required. The cell is empty."),
    ("customer_services", {"customer_account_number": "CT-NOPE"},
     "customer_account_number: Select a valid choice. That choice is not one of the available choices. No "
     "customer with account number 'CT-NOPE'."),
    ("customer_services", {"plan_code": "NOPE"},
     "plan_code: Select a valid choice. That choice is not one of the available choices. No service package "
     "with plan code 'NOPE'."),
    ("customer_services", {"status": "paused"},
     "status: Select a valid choice. paused is not one of the available choices. Write one of pending, active, "
     "suspended, cancelled, expired."),
    ("customer_services", {"quantity": "0"}, "quantity: The quantity must be at least 1."),
    ("customer_services", {"quantity": "1.5"},
     "quantity: Enter a whole number. The cell holds '1.5'; write a whole number."),
    ("customer_services", {"activated_at": ""}, "activated_at: An active service needs the time it was activated."),
    ("customer_services", {"activated_at": "2025-13-01T00:00"},
     "activated_at: Enter a valid date. The cell holds '2025-13-01T00:00'"),
    ("customer_services", {"activated_at": "yesterday"},
     "activated_at: Enter a valid date. The cell holds 'yesterday'"),
    ("customer_services", {"status": "cancelled"},
     "cancelled_at: A cancelled service needs the time it was cancelled."),
    ("customer_services", {"cancelled_at": "2025-02-30T00:00"},
     "cancelled_at: Enter a valid date. The cell holds '2025-02-30T00:00'"),
    ("invoices", {"customer_account_number": "CT-NOPE"},
     "customer_account_number: Select a valid choice. That choice is not one of the available choices. No "
     "customer with account number 'CT-NOPE'."),
    ("invoices", {"service_reference": "SVC-NOPE"},
     "service_reference: Select a valid choice. That choice is not one of the available choices. No customer "
     "service with reference 'SVC-NOPE'."),
    ("invoices", {"kind": "subscription_period", "service_reference": ""},
     "service_reference: A subscription-period invoice needs its service and the period it bills."),
    ("invoices", {"kind": "refund"},
     "kind: Select a valid choice. refund is not one of the available choices. Write one of manual, "
     "subscription_period."),
    ("invoices", {"status": "open"},
     "status: Select a valid choice. open is not one of the available choices. Write one of draft, issued, "
     "partially_paid, paid, void."),
    ("invoices", {"issued_on": "01/02/2025"}, "issued_on '01/02/2025' is not a date like 2025-01-31 (YYYY-MM-DD)."),
    ("invoices", {"issued_on": ""}, "issued_on: This field is required. The cell is empty."),
    ("invoices", {"due_on": "2025-01-01"}, "due_on: The due date is before the issue date."),
    ("invoices", {"period_start": "2025-1-1"}, "period_start '2025-1-1' is not a date like 2025-01-31 (YYYY-MM-DD)."),
    ("invoices", {"period_end": "2025-02-31"},
     "period_end: Enter a valid date. The cell holds '2025-02-31'; write an ISO date, YYYY-MM-DD."),
    ("invoices", {"period_start": "2025-02-01", "period_end": "2025-01-31"},
     "period_end: The period ends before it starts."),
    ("invoices", {"currency_code": "EURO"}, "currency_code: Ensure this value has at most 3 characters (it has 4)."),
    ("invoices", {"subtotal": "49.001"},
     "subtotal: Ensure that there are no more than 2 decimal places. The cell holds '49.001'"),
    ("invoices", {"subtotal": "48.00", "total": "48.00"},
     "The subtotal 48.00 does not match the sum of the lines (49.00)."),
    ("invoices", {"tax_total": "-1.00"}, "tax_total: Amounts cannot be negative (got -1.00)."),
    ("invoices", {"total": "50.00"}, "total: The total 50.00 is not the subtotal 49.00 plus tax 0.00."),
    ("invoices", {"total": "fifty"}, "total: Enter a number. The cell holds 'fifty'"),
    ("invoices", {"line_description": ""}, "line_description: This field is required. The cell is empty."),
    ("invoices", {"line_plan_code": "NOPE"},
     "line_plan_code: Select a valid choice. That choice is not one of the available choices. No service "
     "package with plan code 'NOPE'."),
    ("invoices", {"line_quantity": "0"}, "line_quantity: The amount must be greater than zero (got 0)."),
    ("invoices", {"line_quantity": "one"}, "line_quantity: Enter a number. The cell holds 'one'"),
    ("invoices", {"line_unit_price": "1.001"},
     "line_unit_price: Ensure that there are no more than 2 decimal places. The cell holds '1.001'"),
    ("payments", {"customer_account_number": "CT-NOPE"},
     "customer_account_number: Select a valid choice. That choice is not one of the available choices. No "
     "customer with account number 'CT-NOPE'."),
    ("payments", {"invoice_number": "INV-NOPE"},
     "invoice_number: Select a valid choice. That choice is not one of the available choices. No invoice with "
     "number 'INV-NOPE'."),
    ("payments", {"amount": "0"}, "amount: The amount must be greater than zero (got 0)."),
    ("payments", {"amount": "1e3"},
     "amount: Enter a plain decimal number written with the digits 0-9, like 1234.50 (not 1e3). The cell holds "
     "'1e3'; write a plain decimal"),
    ("payments", {"amount": "50.00"},
     "amount: The payment of 50.00 is larger than the balance of invoice INV-2025-0001 (49.00 due)."),
    ("payments", {"method": "paypal"},
     "method: Select a valid choice. paypal is not one of the available choices. Write one of banktransfer, "
     "creditcard, cash, check, bankremittance, others."),
    ("payments", {"status": "done"},
     "status: Select a valid choice. done is not one of the available choices. Write one of pending, "
     "completed, failed, refunded."),
    ("payments", {"paid_at": ""}, "paid_at: A completed payment needs the time it was paid."),
    ("payments", {"paid_at": "2025-02-10 noon"}, "paid_at: Enter a valid time. The cell holds '2025-02-10 noon'"),
    ("payments", {"currency_code": "U$D"}, "currency_code: Use a three-letter ISO 4217 currency code, like USD."),
    # Issue 18: odd input.
    ("customers", {"currency_code": "XYZ"},
     "currency_code: XYZ is not an ISO 4217 currency code in use: write one like USD, EUR or GBP."),
    ("invoices", {"currency_code": "ABC"},
     "currency_code: ABC is not an ISO 4217 currency code in use: write one like USD, EUR or GBP."),
    ("customers", {"first_name": "A\x00va"},
     "first_name: Null characters are not allowed. The cell holds a NUL character (\\x00) at character 2; remove "
     "it."),
    ("invoices", {"notes": "\x00"}, "notes: Null characters are not allowed."),
    ("service_packages", {"price": "39\x00.00"}, "price: Null characters are not allowed."),
    ("customers", {"company_name": '=HYPERLINK("https://e.vl/login","Fix billing now")'},
     "company_name '=HYPERLINK(\"https://e.vl/login\",\"Fix ...' starts with '=', which a spreadsheet runs as a "
     "formula: refused as formula injection. Start the text with something else (only a number or a phone number may "
     "start with + or -)."),
    ("customers", {"last_name": "+SUM(A1:A9)"}, "last_name '+SUM(A1:A9)' starts with '+', which a spreadsheet runs"),
    ("customers", {"billing_city": "@cmd"}, "billing_city '@cmd' starts with '@', which a spreadsheet runs"),
    ("customers", {"phone": "-2+3+cmd|' /C calc'!A0"}, "phone \"-2+3+cmd|' /C calc'!A0\" starts with '-'"),
    ("service_packages", {"plan_code": "-SUM"}, "plan_code '-SUM' starts with '-', which a spreadsheet runs"),
    ("invoices", {"line_description": "=1+1"}, "row 3: line_description '=1+1' starts with '='"),
    ("payments", {"notes": "  @SUM(1)"}, "notes '@SUM(1)' starts with '@'"),
    ("customers", {"account_number": "CT-1\x00"}, "account_number: Null characters are not allowed."),
    ("payments", {"invoice_number": "INV\x00"}, "invoice_number: Null characters are not allowed."),
    # A field's own check speaks first, in the admin's words: an account number cannot start with "=" anyway.
    ("customers", {"account_number": "=1+1"},
     "account_number: Account numbers use capital letters, digits and dashes, like CT-2025-00002."),
    ("customers", {"email": "@cmd"}, "email: Email address '@cmd' is not valid."),
    ("service_packages", {"price": arabic("123.00")},
     "price: Enter a plain decimal number written with the digits 0-9, like 1234.50 (not 1e3). The cell holds "
     f"'{arabic('123.00')}'"),
    ("service_packages", {"price": "1e3"}, "price: Enter a plain decimal number written with the digits 0-9"),
    ("payments", {"amount": fullwidth("49.00")}, "amount: Enter a plain decimal number written with the digits"),
    ("invoices", {"line_quantity": arabic("2")}, "line_quantity: Enter a plain decimal number written with the"),
    ("service_packages", {"interval": arabic("1")},
     f"interval '{arabic('1')}' has digits other than 0-9: write numbers and dates with the digits 0-9."),
    ("customer_services", {"quantity": arabic("12")}, f"quantity '{arabic('12')}' has digits other than 0-9"),
    ("customer_services", {"quantity": "1e3"}, "quantity: Enter a whole number. The cell holds '1e3'"),
    ("invoices", {"issued_on": arabic("2025-02-01")},
     f"issued_on: Enter a valid date. The cell holds '{arabic('2025-02-01')}'"),
    ("customer_services", {"activated_at": "2025-01-15T" + arabic("09:00:00")},
     f"activated_at: Enter a valid time. The cell holds '2025-01-15T{arabic('09:00:00')}'"),
    ("customer_services", {"status": "cancelled", "cancelled_at": "2025-01-14T09:00:00+00:00"},
     "cancelled_at: Cancelled at is before activated at: a service is cancelled after it was activated."),
]


@pytest.mark.parametrize(("entity", "cells", "message"), BAD_CELLS,
                         ids=[f"{e}-{'-'.join(c)}-{i}" for i, (e, c, _) in enumerate(BAD_CELLS)])
def test_a_bad_cell_is_refused_with_its_message_and_nothing_is_written(tmp_path, entity, cells, message):
    import_templates(tmp_path, *ORDER[: ORDER.index(entity)])
    model = importing.entity_named(entity).model
    before = model.objects.count()
    output, code = run(tmp_path, entity, with_cells(entity, **cells))
    assert code == 2
    assert ": refused " in output
    assert message in output
    assert "is violated" not in output  # every constraint has a clean() check with words
    assert "Nothing was written" in output
    assert model.objects.count() == before


# --- the admin's words ------------------------------------------------------------------------------------------------
# (entity, cells, the field whose admin error the import must repeat): the admin's own form is rendered with the
# same bad values, and the import's message for the column is that form's message (perhaps followed by a hint).
SAME_AS_ADMIN = [
    ("customers", {"account_type": "vip"}, "account_type"),
    ("customers", {"status": "gone"}, "status"),
    ("customers", {"account_number": ""}, "account_number"),
    ("customers", {"account_number": "ct 1"}, "account_number"),
    ("customers", {"email": "ava@@example"}, "email"),
    ("customers", {"first_name": "A" * 101}, "first_name"),
    ("customers", {"currency_code": "usd"}, "currency_code"),
    ("service_packages", {"name": ""}, "name"),
    ("service_packages", {"price": "abc"}, "price"),
    ("service_packages", {"price": "$12"}, "price"),
    ("service_packages", {"price": "1,200.00"}, "price"),
    ("service_packages", {"price": "12.345"}, "price"),
    ("service_packages", {"price": "-1.00"}, "price"),
    ("service_packages", {"price": "12345678901.00"}, "price"),
    ("service_packages", {"interval": "monthly"}, "interval"),
    ("service_packages", {"interval": "1.5"}, "interval"),
    ("service_packages", {"interval": "-1"}, "interval"),
    ("service_packages", {"interval": "0"}, "interval"),
    ("service_packages", {"interval_unit": "days"}, "interval_unit"),
    ("customer_services", {"customer_account_number": "CT-NOPE"}, "customer"),
    ("customer_services", {"plan_code": "NOPE"}, "package"),
    ("customer_services", {"status": "paused"}, "status"),
    ("customer_services", {"quantity": "x"}, "quantity"),
    ("customer_services", {"quantity": "1.5"}, "quantity"),
    ("customer_services", {"quantity": "-2"}, "quantity"),
    ("customer_services", {"quantity": "0"}, "quantity"),
    ("customer_services", {"activated_at": "2025-13-01T00:00"}, "activated_at"),
    ("customer_services", {"activated_at": "yesterday"}, "activated_at"),
    ("customer_services", {"activated_at": "2025-01-15T25:00"}, "activated_at"),
    ("customer_services", {"activated_at": ""}, "activated_at"),
    ("invoices", {"customer_account_number": "CT-NOPE"}, "customer"),
    ("invoices", {"service_reference": "SVC-NOPE"}, "service"),
    ("invoices", {"kind": "refund"}, "kind"),
    ("invoices", {"status": "open"}, "status"),
    ("invoices", {"issued_on": ""}, "issued_on"),
    ("invoices", {"issued_on": "2025-02-31"}, "issued_on"),
    ("invoices", {"due_on": "2025-01-01"}, "due_on"),
    ("invoices", {"period_end": "2025-02-31"}, "period_end"),
    ("invoices", {"period_start": "2025-02-01", "period_end": "2025-01-31"}, "period_end"),
    ("invoices", {"subtotal": "fifty"}, "subtotal"),
    ("invoices", {"subtotal": "49.001"}, "subtotal"),
    ("invoices", {"tax_total": "-1.00"}, "tax_total"),
    ("invoices", {"line_description": ""}, "description"),
    ("invoices", {"line_plan_code": "NOPE"}, "package"),
    ("invoices", {"line_quantity": "one"}, "quantity"),
    ("invoices", {"line_quantity": "0"}, "quantity"),
    ("invoices", {"line_unit_price": "1.001"}, "unit_price"),
    ("payments", {"invoice_number": "INV-NOPE"}, "invoice"),
    ("payments", {"amount": "0"}, "amount"),
    ("payments", {"amount": "abc"}, "amount"),
    ("payments", {"method": "paypal"}, "method"),
    ("payments", {"status": "done"}, "status"),
    ("payments", {"paid_at": "2025-02-10 noon"}, "paid_at"),
    ("payments", {"paid_at": "2025-02-10T10:00", "status": "completed", "amount": "-5"}, "amount"),
    ("payments", {"currency_code": "U$D"}, "currency_code"),
    ("payments", {"amount": "1e3"}, "amount"),  # the admin's money fields take plain decimals only (issue 18)
    ("payments", {"amount": arabic("49.00")}, "amount"),
    ("service_packages", {"price": "1E2"}, "price"),
    ("invoices", {"line_unit_price": arabic("39.00")}, "unit_price"),
    ("invoices", {"line_quantity": "1e0"}, "quantity"),
    ("customers", {"currency_code": "XYZ"}, "currency_code"),
    ("payments", {"currency_code": "XTS"}, "currency_code"),
    ("customers", {"first_name": "A\x00va"}, "first_name"),
    ("invoices", {"notes": "paid\x00"}, "notes"),
    ("invoices", {"line_description": "Fiber\x00"}, "description"),
    ("customer_services", {"activated_at": "2025-01-15T09:00", "status": "cancelled",
                           "cancelled_at": "2025-01-10T09:00"}, "cancelled_at"),
]
# The import is stricter than the admin here (ISO dates, plain decimals, true or false): the admin's form takes
# these values, so it has no message to repeat and the import keeps its own.
STRICTER_THAN_ADMIN = [
    ("service_packages", {"is_active": "maybe"}, "is_active", "is_active 'maybe' is not true or false."),
    ("service_packages", {"interval": "1.0"}, "interval", "interval '1.0' is not a whole number."),
    ("invoices", {"issued_on": "01/02/2025"}, "issued_on",
     "issued_on '01/02/2025' is not a date like 2025-01-31 (YYYY-MM-DD)."),
    ("invoices", {"period_start": "2025-1-1"}, "period_start",
     "period_start '2025-1-1' is not a date like 2025-01-31 (YYYY-MM-DD)."),
    # Formula injection is the import's own check: text the admin stores as it is (a CSV export neutralises it).
    ("customers", {"first_name": "=HYPERLINK(1)"}, "first_name",
     "first_name '=HYPERLINK(1)' starts with '=', which a spreadsheet runs as a formula"),
    ("invoices", {"notes": "-cmd"}, "notes", "notes '-cmd' starts with '-', which a spreadsheet runs as a formula"),
    # The admin's integer fields read other scripts' digits as numbers; the import asks for 0-9.
    ("customer_services", {"quantity": arabic("3")}, "quantity",
     f"quantity '{arabic('3')}' has digits other than 0-9"),
]


def admin_form(rf, admin_user, entity: importing.ImportEntity, cells: dict[str, str], field: str):
    """The admin's own form for the entity (for an invoice line field: its line inline's), bound to a valid record
    made from the template with `cells` put in, as a person would type them; a reference to no record becomes an
    id no record has."""
    from django.contrib import admin

    from zoho_sync.models import InvoiceLine

    request = rf.get("/")
    request.user = admin_user
    model_admin = admin.site._registry[entity.model]
    row = {**template_rows(entity.name)[0], **cells}
    line = field in {c.field for c in entity.line_columns}
    columns = entity.line_columns if line else entity.columns
    data = {"origin": "local", "refunded_amount": "0.00", "position": "1"}
    for column in columns:
        text = row[column.name]
        if column.ref:
            target = column.ref.model.objects.filter(**{column.ref.key: text}).first()
            data[column.field] = target.pk if target else 0
        elif column.kind == "datetime":
            date_part, _, time_part = text.replace(" ", "T", 1).partition("T")
            data[f"{column.field}_0"], data[f"{column.field}_1"] = date_part, time_part
        elif column.kind != "boolean" or text == "true":
            data[column.field] = text
    if line:
        inline = next(i for i in model_admin.get_inline_instances(request) if i.model is InvoiceLine)
        return inline.get_formset(request).form(data=data)
    return model_admin.get_form(request)(data=data)


@pytest.mark.parametrize(("entity", "cells", "field"), SAME_AS_ADMIN,
                         ids=[f"{e}-{'-'.join(f'{k}={v[:12]}' for k, v in c.items())}" for e, c, _ in SAME_AS_ADMIN])
def test_a_bad_value_gets_the_message_the_admins_form_gives_it(tmp_path, rf, admin_user, entity, cells, field):
    import_templates(tmp_path, *ORDER[: ORDER.index(entity)])
    form = admin_form(rf, admin_user, importing.entity_named(entity), cells, field)
    assert not form.is_valid()
    admin_message = form.errors[field][0]
    assert "is violated" not in admin_message
    column = {c.field: c.name for c in importing.entity_named(entity).all_columns}[field]
    output, code = run(tmp_path, entity, with_cells(entity, **cells))
    assert code == 2
    assert f"{column}: {admin_message}" in output, output


@pytest.mark.parametrize(("entity", "cells", "field", "message"), STRICTER_THAN_ADMIN,
                         ids=[f"{e}-{f}" for e, _, f, _ in STRICTER_THAN_ADMIN])
def test_a_value_the_admin_takes_but_the_import_does_not_keeps_the_imports_message(tmp_path, rf, admin_user, entity,
                                                                                   cells, field, message):
    import_templates(tmp_path, *ORDER[: ORDER.index(entity)])
    form = admin_form(rf, admin_user, importing.entity_named(entity), cells, field)
    form.is_valid()
    assert field not in form.errors
    output, code = run(tmp_path, entity, with_cells(entity, **cells))
    assert code == 2 and message in output


# --- cells the csv module cannot read, formulas, numbers -------------------------------------------------------------
def test_a_cell_over_the_csv_modules_limit_is_a_row_error_naming_its_column(tmp_path):
    """Python's csv module stops at a cell over 131,072 characters: the row is refused with its column named, the
    rest of an unfinished quoted cell is not read as rows of its own, and the run goes on."""
    limit = csv.field_size_limit()
    text = ("account_number,first_name,last_name\n"
            "CT-1000,Ava,Lovelace\n"
            f"CT-1001,{'x' * (limit + 1)},Hopper\n"
            f'CT-1002,Bo,"{"y" * (limit + 10)}\nCT-9999,Not,a row\n"\n'
            f"CT-1003,Cy,{'z' * 20_000}\n"
            "CT-1004,Di,Ritchie\n")
    output, code = run(tmp_path, "customers", text)
    assert code == 2
    assert (f"row 3: refused customer CT-1001:\n    first_name: the cell is longer than {limit} characters; a cell "
            "holds at most 10000.") in output
    assert (f"row 4: refused customer CT-1002:\n    last_name: the cell is longer than {limit} characters; a cell "
            "holds at most 10000.") in output
    assert "row 5: refused customer CT-1003:\n    last_name: the cell is 20000 characters long; a cell holds at " \
           "most 10000." in output
    assert "row 6: created customer CT-1004" in output
    assert "CT-9999" not in output and "Traceback" not in output
    assert "customers: 5 row(s) in" in output and "2 created, 0 changed, 0 unchanged, 3 refused." in output
    assert not Customer.objects.exists()
    output, code = run(tmp_path, "customers", text, "--skip-invalid")
    assert code == 2 and "3 refused record(s) were left out (--skip-invalid)" in output
    assert sorted(Customer.objects.values_list("account_number", flat=True)) == ["CT-1000", "CT-1004"]


def test_an_oversized_cell_in_an_invoice_or_a_header(tmp_path):
    import_templates(tmp_path, *ORDER[:3])
    rows = template_rows("invoices")
    rows[1]["line_description"] = "d" * (csv.field_size_limit() + 1)
    output, code = run(tmp_path, "invoices", csv_text(rows))
    assert code == 2
    assert "row 3: refused invoice INV-2025-0001:\n    line_description: the cell is longer than" in output
    assert not Invoice.objects.exists()
    output, code = run(tmp_path, "customers", f"account_number,{'h' * 200_000}\nCT-1000\n")
    assert code == 2
    assert "The header row's cell 2 is longer than 131072 characters" in output
    assert "the file was refused; nothing was written" in output


def test_phones_signed_numbers_and_ordinary_text_are_not_formulas(tmp_path):
    rows = [{"account_number": f"CT-100{n}", "first_name": "Ava = Ada", "phone": phone,
             "email": "ava+billing@example.com", "company_name": company}
            for n, (phone, company) in enumerate([("+44 20 7946 0958", "O'Brien & Sons"), ("+1 (555) 0100", "-12.50"),
                                                  ("-555-0100", "A+B Ltd")])]
    output, code = run(tmp_path, "customers", csv_text(rows))
    assert code == 0, output
    assert sorted(Customer.objects.values_list("phone", flat=True)) == ["+1 (555) 0100", "+44 20 7946 0958",
                                                                         "-555-0100"]


def test_a_nul_cell_never_reaches_the_database(tmp_path):
    """PostgreSQL refuses NUL with a DataError that names no field: the import names it first, and goes on."""
    text = "account_number,first_name,last_name\nCT-1000,Ava,Lovelace\nCT-1001,Bo,Hop\x00per\nCT-1002,Cy,Li\n"
    output, code = run(tmp_path, "customers", text, "--skip-invalid")
    assert code == 2
    assert "row 3: refused customer CT-1001:\n    last_name: Null characters are not allowed. The cell holds a NUL " \
           "character (\\x00) at character 4; remove it." in output
    assert sorted(Customer.objects.values_list("account_number", flat=True)) == ["CT-1000", "CT-1002"]


# --- the file's shape -----------------------------------------------------------------------------------------------
def test_missing_required_and_unknown_columns_refuse_the_file(tmp_path):
    output, code = run(tmp_path, "customers", "email,nickname,Email\nx@example.com,Al,y@example.com\n")
    assert code == 2
    assert "Unknown column(s) 'nickname': the customers columns are account_number, email" in output
    assert "Column(s) 'email' appear more than once in the header." in output
    assert "Missing required column(s): account_number." in output
    assert "the file was refused; nothing was written" in output
    assert not Customer.objects.exists()


def test_an_empty_file_and_a_row_of_the_wrong_width(tmp_path):
    output, code = run(tmp_path, "customers", "")
    assert code == 2 and "The file is empty" in output
    output, code = run(tmp_path, "customers", "account_number,first_name\nCT-1000,Ava,extra\n\nCT-1001,Bo\n")
    assert code == 2 and "row 2: refused" in output and "The row has 3 cells; the header has 2." in output
    assert "row 4: created customer CT-1001" in output  # blank rows count, as a spreadsheet numbers them
    assert not Customer.objects.exists()


def test_a_file_that_is_not_utf8(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes("account_number,first_name\nCT-1000,Zoë\n".encode("latin-1"))
    with pytest.raises(CommandError, match="is not UTF-8 text") as caught:
        call_command("zoho_import", "--entity", "customers", str(path), stdout=io.StringIO())
    assert caught.value.returncode == 1
    assert not Customer.objects.exists()


def test_a_missing_file_and_no_file(tmp_path):
    with pytest.raises(CommandError, match="no such file"):
        call_command("zoho_import", "--entity", "customers", str(tmp_path / "nope.csv"), stdout=io.StringIO())
    with pytest.raises(CommandError, match="Give the CSV file"):
        call_command("zoho_import", "--entity", "customers", stdout=io.StringIO())


def test_a_key_twice_in_the_file_refuses_the_second(tmp_path):
    rows = template_rows("customers") * 2
    output, code = run(tmp_path, "customers", csv_text(rows))
    assert code == 2
    assert "row 3: refused customer CT-2025-00001:\n    account_number 'CT-2025-00001' is also on row 2: one " \
           "customer per file." in output
    assert not Customer.objects.exists()


def test_header_names_in_any_order_and_case_and_only_the_required_columns(tmp_path):
    output, code = run(tmp_path, "customers", " Last_Name ,ACCOUNT_NUMBER\nLovelace,CT-1000\n")
    assert code == 0, output
    customer = Customer.objects.get()
    assert (customer.last_name, customer.account_type, customer.currency_code) == ("Lovelace", "individual", "USD")


# --- all or nothing, dry runs, reruns ---------------------------------------------------------------------------------
def three_customers(bad_email: str = "b@example.com") -> str:
    return ("account_number,first_name,email\n"
            f"CT-1000,Ava,a@example.com\nCT-1001,Bo,{bad_email}\nCT-1002,Cy,c@example.com\n")


def test_one_bad_row_writes_nothing(tmp_path):
    output, code = run(tmp_path, "customers", three_customers("not-an-email"))
    assert code == 2
    assert "row 2: created customer CT-1000" in output  # what the rows would do...
    assert "row 3: refused customer CT-1001:\n    email: Email address 'not-an-email' is not valid." in output
    assert "customers: 3 row(s) in" in output and "2 created, 0 changed, 0 unchanged, 1 refused." in output
    assert "Nothing was written: 1 record(s) refused" in output
    assert not Customer.objects.exists()  # ...and nothing is written


def test_skip_invalid_imports_the_others(tmp_path):
    output, code = run(tmp_path, "customers", three_customers("not-an-email"), "--skip-invalid")
    assert code == 2
    assert "1 refused record(s) were left out (--skip-invalid); the others were imported." in output
    assert sorted(Customer.objects.values_list("account_number", flat=True)) == ["CT-1000", "CT-1002"]


def test_dry_run_reports_what_a_run_would_do_and_writes_nothing(tmp_path):
    make_customer(account_number="CT-1001", first_name="Bo", email="old@example.com")
    before = snapshot(Customer)
    output, code = run(tmp_path, "customers", three_customers(), "--dry-run")
    assert code == 0, output
    assert "Dry run: every row is checked" in output and "Dry run: nothing was written." in output
    assert "row 2: created customer CT-1000" in output
    assert "row 3: changed customer CT-1001 (email)" in output
    assert snapshot(Customer) == before
    assert Customer.objects.get().email == "old@example.com"
    output, code = run(tmp_path, "customers", three_customers("nope"), "--dry-run")
    assert code == 2 and "a real run writes nothing (all or nothing)" in output


def test_a_rerun_of_the_same_file_changes_nothing(tmp_path):
    import_templates(tmp_path, *ORDER)
    before = {model: snapshot(model) for model in (Customer, ServicePackage, CustomerService, Invoice, Payment)}
    lines = list(InvoiceLine.objects.values_list("pk", "amount"))
    for entity in ORDER:
        output, code = run(tmp_path, entity, importing.template(importing.entity_named(entity)), "-v2")
        assert code == 0, output
        assert "0 created, 0 changed, 1 unchanged, 0 refused." in output
        assert ": unchanged " in output
        assert "Nothing changed: every imported row matches its record." in output
    assert {model: snapshot(model) for model in before} == before
    assert list(InvoiceLine.objects.values_list("pk", "amount")) == lines


# --- the sync bookkeeping -------------------------------------------------------------------------------------------
def test_a_changed_row_is_a_local_change_even_under_a_workers_claim(tmp_path, django_capture_on_commit_callbacks):
    import_templates(tmp_path, "customers")
    customer = Customer.objects.get()
    until = timezone.now() + timedelta(minutes=5)
    Customer.objects.filter(pk=customer.pk).update(
        sync_status=SyncStatus.FAILED, sync_version=7, sync_attempts=3, last_sync_error="Zoho said no",
        last_error_kind="validation", zoho_id="460000000012345", claimed_by="host:1:run", claimed_until=until)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        output, code = run(tmp_path, "customers", with_cells("customers", phone="+1 555 0199"))
    assert code == 0, output
    assert "row 2: changed customer CT-2025-00001 (phone)" in output
    assert "1 record(s) are pending for Zoho (no push was queued per record): `manage.py zoho_backfill --entity " \
           "customers`" in output
    assert callbacks == []  # no push queued per record: the backfill or the schedule sends it
    customer.refresh_from_db()
    assert (customer.phone, customer.sync_status, customer.sync_version, customer.sync_attempts) == (
        "+1 555 0199", SyncStatus.PENDING, 8, 0)
    assert (customer.last_sync_error, customer.last_error_kind) == (CHANGED_SINCE_FAILURE, "")
    assert (customer.zoho_id, customer.claimed_by, customer.claimed_until) == ("460000000012345", "host:1:run", until)


def test_created_records_are_pending_like_a_save_leaves_them(tmp_path):
    output, code = run(tmp_path, "customers", three_customers())
    assert code == 0, output
    assert "3 record(s) are pending for Zoho" in output
    assert set(Customer.objects.values_list("sync_status", "sync_version", "zoho_id")) == {
        (SyncStatus.PENDING, 0, None)}


def test_an_empty_optional_cell_clears_the_field_or_sets_its_default(tmp_path):
    make_customer(account_number="CT-1000", first_name="Ava", phone="123", account_type="business")
    output, code = run(tmp_path, "customers", "account_number,first_name,phone,account_type\nCT-1000,Ava,,\n")
    assert code == 0, output
    assert "changed customer CT-1000 (phone, account_type)" in output
    assert Customer.objects.values_list("phone", "account_type").get() == ("", "individual")


# --- invoices with lines --------------------------------------------------------------------------------------------
def test_changed_lines_replace_the_old_ones_and_change_the_invoice(tmp_path, django_capture_on_commit_callbacks):
    import_templates(tmp_path, *ORDER[:4])
    rows = template_rows("invoices")
    rows[1].update(line_quantity="3")
    for row in rows:
        row.update(subtotal="54.00", total="54.00")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        output, code = run(tmp_path, "invoices", csv_text(rows))
    assert code == 0, output
    assert callbacks == []  # the old lines' deletes queued no push and bumped the version no further
    assert "rows 2-3: changed invoice INV-2025-0001 (subtotal, total, lines)" in output
    invoice = Invoice.objects.get()
    assert (invoice.sync_version, invoice.sync_status) == (1, SyncStatus.PENDING)
    assert list(invoice.lines.values_list("position", "quantity", "amount")) == [
        (1, Decimal("1.00"), Decimal("39.00")), (2, Decimal("3.00"), Decimal("15.00"))]
    assert invoice.totals_problems() == []


def test_invoice_rows_may_leave_the_invoice_columns_empty_after_the_first(tmp_path):
    import_templates(tmp_path, *ORDER[:3])
    rows = template_rows("invoices")
    rows[1] = {k: (v if k.startswith("line_") or k == "invoice_number" else "") for k, v in rows[1].items()}
    output, code = run(tmp_path, "invoices", csv_text(rows))
    assert code == 0, output
    assert Invoice.objects.get().lines.count() == 2


def test_invoice_rows_that_disagree_or_are_apart_are_refused(tmp_path):
    import_templates(tmp_path, *ORDER[:3])
    rows = template_rows("invoices")
    rows[1]["issued_on"] = "2025-03-01"
    output, code = run(tmp_path, "invoices", csv_text(rows))
    assert code == 2
    assert "rows 2-3: refused invoice INV-2025-0001:\n    row 3: issued_on '2025-03-01' differs from the " \
           "invoice's first row ('2025-02-01')." in output
    other = {**template_rows("invoices")[0], "invoice_number": "INV-2025-0002", "subtotal": "39.00",
             "total": "39.00"}
    rows = template_rows("invoices")
    output, code = run(tmp_path, "invoices", csv_text([rows[0], other, rows[1]]))
    assert code == 2
    assert "invoice_number 'INV-2025-0001' is also on row 2: one invoice per file (its lines on consecutive rows)." \
        in output
    assert not Invoice.objects.exists() and not InvoiceLine.objects.exists()


def test_a_line_row_error_names_its_row(tmp_path):
    import_templates(tmp_path, *ORDER[:3])
    rows = template_rows("invoices")
    rows[1]["line_unit_price"] = "five"
    output, code = run(tmp_path, "invoices", csv_text(rows))
    assert code == 2
    assert "    row 3: line_unit_price: Enter a number. The cell holds 'five'; write a plain decimal" in output


def test_an_invoice_for_a_service_of_another_customer(tmp_path):
    import_templates(tmp_path, *ORDER[:3])
    make_customer(account_number="CT-2025-00002")
    output, code = run(tmp_path, "invoices", with_cells("invoices", customer_account_number="CT-2025-00002"))
    assert code == 2 and "service_reference: The service belongs to another customer." in output


# --- payments against their invoice's balance ------------------------------------------------------------------------
def test_payments_that_together_pay_too_much_are_refused_from_the_one_that_goes_over(tmp_path):
    import_templates(tmp_path, *ORDER[:4])
    first = {**template_rows("payments")[0], "amount": "30.00"}
    rows = [first, {**first, "reference": "PAY-2", "amount": "19.00"}, {**first, "reference": "PAY-3"}]
    output, code = run(tmp_path, "payments", csv_text(rows))
    assert code == 2
    assert "row 4: refused payment PAY-3:\n    amount: The payment of 30.00 is larger than the balance of invoice " \
           "INV-2025-0001 (0.00 due)." in output
    assert "2 created, 0 changed, 0 unchanged, 1 refused." in output
    output, code = run(tmp_path, "payments", csv_text(rows[:2]))
    assert code == 0, output
    # A rerun counts the payments already recorded once, not twice; a pending payment is checked, not counted.
    output, code = run(tmp_path, "payments", csv_text([*rows[:2], {**rows[2], "amount": "1.00", "status": "pending",
                                                                   "paid_at": ""}]))
    assert code == 2
    assert "The payment of 1.00 is larger than the balance of invoice INV-2025-0001 (0.00 due)." in output


def test_a_payment_for_an_invoice_of_another_customer(tmp_path):
    import_templates(tmp_path, *ORDER[:4])
    make_customer(account_number="CT-2025-00002")
    output, code = run(tmp_path, "payments", with_cells("payments", customer_account_number="CT-2025-00002"))
    assert code == 2 and "invoice_number: The invoice belongs to another customer." in output


def test_a_changed_payment_is_checked_against_the_others_only(tmp_path):
    import_templates(tmp_path, *ORDER)
    output, code = run(tmp_path, "payments", with_cells("payments", notes="wire 42"))
    assert code == 0, output
    assert "changed payment PAY-2025-0001 (notes)" in output


def test_the_docs_list_the_columns_the_command_knows():
    from pathlib import Path

    docs = (Path(__file__).resolve().parents[2] / "docs" / "import.md").read_text()
    for entity in importing.ENTITIES.values():
        assert importing.describe(entity) in docs


@pytest.mark.parametrize("entity", ["customer_services", "invoices", "payments"])
def test_the_queries_do_not_grow_with_the_rows(tmp_path, entity):
    """References and existing records are loaded per batch: 3 rows and 25 rows cost the same queries. (Not 30:
    SQLite takes at most 999 parameters a statement, so 30 invoices of 34 columns are two INSERTs of one batch.)"""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    import_templates(tmp_path, *ORDER[: ORDER.index(entity)])
    customers = [f"CT-2025-{n:05d}" for n in range(2, 32)]
    run(tmp_path, "customers", csv_text([{"account_number": c, "first_name": "Ava"} for c in customers]))
    counts = []
    for size in (3, 25):
        rows = []
        for n in range(size):
            cells = {"reference": f"R-{size}-{n}", "invoice_number": f"I-{size}-{n}", "service_reference": ""}
            if entity == "payments":
                cells.update(amount="1.00", invoice_number="INV-2025-0001")
            else:
                cells["customer_account_number"] = customers[n]
            rows += [{**row, **{k: v for k, v in cells.items() if k in row}} for row in template_rows(entity)]
        with CaptureQueriesContext(connection) as queries:
            output, code = run(tmp_path, entity, csv_text(rows))
        assert code == 0, output
        counts.append(len(queries))
    assert counts[0] == counts[1]
