"""The importable entities: their columns, natural keys and example rows (data, not code).

The examples chain: the customer, package, service, invoice and payment templates name each other, so importing
the five templates in this order works on an empty database.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import models

from zoho_sync.importing.columns import Column, Ref
from zoho_sync.importing.hooks import EntityHooks, InvoiceHooks, PaymentHooks
from zoho_sync.models import Customer, CustomerService, Invoice, InvoiceLine, Payment, ServicePackage
from zoho_sync.sync.specs import entity_name


@dataclass(frozen=True)
class ImportEntity:
    """One --entity of `zoho_import`: a model, its natural-key column and the columns a file may hold.

    `line_columns` (invoices) are the columns of one invoice line: an invoice is one row per line, with the
    invoice's own columns on every row of it (repeated, or left empty after its first row).
    """

    name: str
    noun: str
    model: type[models.Model]
    key: str
    columns: tuple[Column, ...]
    line_columns: tuple[Column, ...] = ()
    extra_examples: tuple[dict[str, str], ...] = ()  # more template rows (an invoice's second line)
    shape: str = ""
    hooks: type[EntityHooks] = EntityHooks

    @property
    def all_columns(self) -> tuple[Column, ...]:
        return self.columns + self.line_columns

    def column(self, name: str) -> Column:
        return next(c for c in self.all_columns if c.name == name)

    def model_field(self, column: Column) -> models.Field:
        model = InvoiceLine if column in self.line_columns else self.model
        return model._meta.get_field(column.field)

    def required(self) -> list[str]:
        return [c.name for c in self.all_columns if c.required]


CUSTOMER_REF = Ref(Customer, "account_number", "customer with account number", only=("id", "account_number"))
PACKAGE_REF = Ref(ServicePackage, "plan_code", "service package with plan code", only=("id", "plan_code"))
SERVICE_REF = Ref(CustomerService, "reference", "customer service with reference", only=("id", "customer_id"))
INVOICE_REF = Ref(Invoice, "invoice_number", "invoice with number",
                  only=("id", "customer_id", "total", "invoice_number"))


def customer_column(**kwargs) -> Column:
    return Column("customer_account_number", "customer", "ref", "CT-2025-00001", required=True,
                  help="the customer's account number", ref=CUSTOMER_REF, **kwargs)


CUSTOMERS = ImportEntity(
    name="customers", noun="customer", model=Customer, key="account_number",
    columns=(
        Column("account_number", "account_number", "text", "CT-2025-00001", required=True,
               help="the natural key: capital letters, digits and dashes"),
        Column("email", "email", "text", "ava@example.com"),
        Column("first_name", "first_name", "text", "Ava"),
        Column("last_name", "last_name", "text", "Lovelace"),
        Column("company_name", "company_name", "text", "",
               help="a customer needs a first name, a last name or a company name"),
        Column("phone", "phone", "text", "+1 555 0100"),
        Column("account_type", "account_type", "choice", "individual"),
        Column("status", "status", "choice", "active"),
        Column("billing_street", "billing_street", "text", "1 Main Street"),
        Column("billing_city", "billing_city", "text", "Springfield"),
        Column("billing_state", "billing_state", "text", "IL"),
        Column("billing_postal_code", "billing_postal_code", "text", "62701"),
        Column("billing_country", "billing_country", "text", "US"),
        Column("currency_code", "currency_code", "text", "USD", help="ISO 4217"),
    ),
)

SERVICE_PACKAGES = ImportEntity(
    name="service_packages", noun="service package", model=ServicePackage, key="plan_code",
    columns=(
        Column("plan_code", "plan_code", "text", "FIBER-100", required=True,
               help="the natural key: letters, digits, dashes and underscores"),
        Column("name", "name", "text", "Fiber 100", required=True),
        Column("description", "description", "text", "100 Mbit/s fiber"),
        Column("price", "price", "money", "39.00", required=True),
        Column("interval", "interval", "integer", "1", help="bill every N interval units"),
        Column("interval_unit", "interval_unit", "choice", "months"),
        Column("is_active", "is_active", "boolean", "true"),
    ),
)

CUSTOMER_SERVICES = ImportEntity(
    name="customer_services", noun="customer service", model=CustomerService, key="reference",
    columns=(
        Column("reference", "reference", "text", "SVC-0001", required=True,
               help="the natural key: your own reference for the service"),
        customer_column(),
        Column("plan_code", "package", "ref", "FIBER-100", required=True, help="the service package's plan code",
               ref=PACKAGE_REF),
        Column("status", "status", "choice", "active",
               help="active needs activated_at, cancelled needs cancelled_at"),
        Column("quantity", "quantity", "integer", "1"),
        Column("activated_at", "activated_at", "datetime", "2025-01-15T09:00:00+00:00"),
        Column("cancelled_at", "cancelled_at", "datetime", ""),
    ),
)

INVOICES = ImportEntity(
    name="invoices", noun="invoice", model=Invoice, key="invoice_number",
    shape="One row per invoice line: the invoice's columns repeat on each of its rows (or stay empty after the "
          "first), and the lines of one invoice are on consecutive rows, in their order.",
    columns=(
        Column("invoice_number", "invoice_number", "text", "INV-2025-0001", required=True, help="the natural key"),
        customer_column(),
        Column("service_reference", "service", "ref", "SVC-0001", help="the customer service it bills",
               ref=SERVICE_REF),
        Column("kind", "kind", "choice", "manual",
               help="subscription_period needs service_reference and period_start"),
        Column("status", "status", "choice", "issued"),
        Column("issued_on", "issued_on", "date", "2025-02-01", required=True),
        Column("due_on", "due_on", "date", "2025-02-15", help="not before issued_on"),
        Column("period_start", "period_start", "date", ""),
        Column("period_end", "period_end", "date", ""),
        Column("currency_code", "currency_code", "text", "USD"),
        Column("subtotal", "subtotal", "money", "49.00", required=True, help="the sum of the line amounts"),
        Column("tax_total", "tax_total", "money", "0.00"),
        Column("total", "total", "money", "49.00", required=True, help="subtotal plus tax_total"),
        Column("notes", "notes", "text", ""),
    ),
    line_columns=(
        Column("line_description", "description", "text", "Fiber 100, February", required=True),
        Column("line_plan_code", "package", "ref", "FIBER-100", help="the service package the line sells",
               ref=PACKAGE_REF),
        Column("line_quantity", "quantity", "quantity", "1"),
        Column("line_unit_price", "unit_price", "money", "39.00", required=True,
               help="the line's amount is quantity times unit price, rounded to the cent"),
    ),
    hooks=InvoiceHooks,
    extra_examples=({"line_description": "Installation", "line_plan_code": "", "line_quantity": "2",
                     "line_unit_price": "5.00"},),
)

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

ENTITIES: dict[str, ImportEntity] = {e.name: e for e in (CUSTOMERS, SERVICE_PACKAGES, CUSTOMER_SERVICES, INVOICES,
                                                          PAYMENTS)}


def entity_named(name: str) -> ImportEntity:
    """The entity an --entity value names: the one set of names (specs.ENTITY_CHOICES) or an alias of one."""
    return ENTITIES[entity_name(name)]


def describe(entity: ImportEntity) -> str:
    """The column documentation of one entity, as --help, the template's docs and docs/import.md print it."""
    lines = [f"{entity.name} (one {entity.noun} per row, found again by {entity.key}):"]
    if entity.shape:
        lines.append(f"  {entity.shape}")
    lines += [f"  {c.describe(entity.model_field(c))}" for c in entity.all_columns]
    return "\n".join(lines)
