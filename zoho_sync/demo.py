"""Deterministic, realistic demo data: customers with their services, invoices and payments.

The same seed and `as_of` date always give the same rows. Rows are written in chunks with explicit ids: on
PostgreSQL through COPY (100,000 customers and their records in seconds), elsewhere through bulk_create.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from django.core.management.color import no_style
from django.db import connection, models, transaction
from django.db.models import Max

from zoho_sync.entities import SPECS
from zoho_sync.models import (
    CreditNote,
    Customer,
    CustomerService,
    Invoice,
    InvoiceLine,
    Payment,
    ServicePackage,
    SyncLog,
)
from zoho_sync.validation import line_amount

CHUNK = 2000
ZERO = Decimal("0.00")

# name, plan_code, price, interval, unit, is_active, is_addon
PACKAGES = (
    ("Fiber 100", "FIBER-100", "39.00", 1, "months", True, False),
    ("Fiber 500", "FIBER-500", "59.00", 1, "months", True, False),
    ("Fiber 1G", "FIBER-1G", "79.00", 1, "months", True, False),
    ("Business Fiber 1G", "BIZ-FIBER-1G", "149.00", 1, "months", True, False),
    ("Annual Security Suite", "SECURITY-ANNUAL", "99.00", 1, "years", True, False),
    ("Legacy DSL", "LEGACY-DSL", "29.00", 1, "months", False, False),
    ("Static IP", "ADDON-STATIC-IP", "10.00", 1, "months", True, True),
    ("Managed Wi-Fi", "ADDON-WIFI", "15.00", 1, "months", True, True),
)
ONE_OFF_CHARGES = (("Installation", "99.00"), ("Router", "149.00"), ("Technician visit", "75.00"), ("Cable", "12.50"))
FIRST = ("Ava", "Liam", "Maya", "Noah", "Zoe", "Omar", "Lena", "Ivan", "Sara", "Diego", "Mei", "Tom", "Anna", "Raj")
LAST = ("Smith", "Garcia", "Chen", "Novak", "Okafor", "Muller", "Rossi", "Kim", "Silva", "Haddad", "Berg", "Patel")
COMPANIES = ("Acme", "Globex", "Initech", "Umbrella", "Hooli", "Vandelay", "Stark", "Wayne", "Tyrell", "Soylent")
CITIES = (("Austin", "TX", "78701"), ("Denver", "CO", "80202"), ("Portland", "OR", "97201"), ("Boston", "MA", "02108"))

CREDIT_EVERY = 8  # one in eight one-off invoices gets a credit, one in eight of their completed payments a refund


@dataclass
class SeedReport:
    counts: dict[str, int] = field(default_factory=dict)
    skipped_reason: str = ""


class _Table:
    """Rows for one model, as tuples in the model's concrete-column order, written in one statement."""

    def __init__(self, model: type[models.Model]):
        self.model = model
        self.fields = list(model._meta.concrete_fields)
        self.defaults = {f.attname: (None if f.primary_key else f.get_default()) for f in self.fields}
        self.rows: list[tuple] = []
        self.written = 0
        self.next_id = (model.objects.aggregate(m=Max("pk"))["m"] or 0) + 1

    def add(self, **values) -> int:
        row_id = values.setdefault("id", self.next_id)
        self.next_id = max(self.next_id, row_id + 1)
        row = {**self.defaults, **values}
        self.rows.append(tuple(row[f.attname] for f in self.fields))
        return row_id

    def flush(self) -> None:
        if not self.rows:
            return
        columns = ", ".join(connection.ops.quote_name(f.column) for f in self.fields)
        table = connection.ops.quote_name(self.model._meta.db_table)
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor, cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in self.rows:
                    copy.write_row(row)
        else:
            # Plain INSERTs rather than bulk_create, which would overwrite the auto_now timestamps with "now"
            # and so break determinism.
            placeholders = ", ".join(["%s"] * len(self.fields))
            prepared = [[f.get_db_prep_save(v, connection) for f, v in zip(self.fields, row, strict=True)]
                        for row in self.rows]
            with connection.cursor() as cursor:
                cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES ({placeholders})", prepared)  # noqa: S608
        self.written += len(self.rows)
        self.rows.clear()


def _at(day: date, hour: int = 10) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=UTC)


def _periods(activated: date, unit: str, as_of: date, count: int) -> Iterator[tuple[date, date]]:
    """The last `count` billing periods that started on or after activation and before as_of."""
    step = 12 if unit == "years" else 1
    starts = []
    month_index = activated.year * 12 + activated.month - 1
    end_index = as_of.year * 12 + as_of.month - 1
    while month_index <= end_index:
        start = date(month_index // 12, month_index % 12 + 1, min(activated.day, 28))
        if start <= as_of:
            starts.append(start)
        month_index += step
    for start in starts[-count:]:
        nxt = start.month - 1 + step
        end = date(start.year + nxt // 12, nxt % 12 + 1, start.day) - timedelta(days=1)
        yield start, end


def demo_data_present() -> int:
    return Customer.objects.count()


def demo_reset() -> None:
    """Delete every billing record of every entity and the sync log (the demo's data), resetting id sequences."""
    models_in_order = (*(spec.model for spec in reversed(SPECS)), InvoiceLine, SyncLog)
    tables = [m._meta.db_table for m in models_in_order]
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # TRUNCATE refuses while deferred foreign-key checks from earlier writes in this transaction wait.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        for sql in connection.ops.sql_flush(no_style(), tables, reset_sequences=True, allow_cascade=False):
            cursor.execute(sql)


class _Seeder:
    """One seeding run's random source, tables and running invoice/payment numbers; each method is one step of
    demo_seed. The order of `rng` calls is the data, so a step must never reorder or skip one."""

    def __init__(self, rng: random.Random, as_of: date):
        self.rng, self.as_of, self.now = rng, as_of, _at(as_of, 9)
        self.tables = {m: _Table(m) for m in (ServicePackage, Customer, CustomerService, Invoice, InvoiceLine, Payment)}
        self.plans: list[tuple] = []
        self.addons: list[tuple] = []
        self.invoice_no = self.payment_no = 0

    def add_packages(self) -> None:
        now, packages = self.now, []
        for name, code, price, interval, unit, active, addon in PACKAGES:
            pk = self.tables[ServicePackage].add(
                name=name, plan_code=code, price=Decimal(price), interval=interval, interval_unit=unit,
                is_active=active, description=f"{name} ({'add-on' if addon else 'plan'})", created_at=now,
                updated_at=now,
            )
            packages.append((pk, Decimal(price), unit, active, addon, name))
        self.tables[ServicePackage].flush()
        self.plans = [p for p in packages if p[3] and not p[4]]
        self.addons = [p for p in packages if p[4]]
        self.invoice_no = (Invoice.objects.count() or 0) + 1
        self.payment_no = (Payment.objects.count() or 0) + 1

    def add_payment(self, customer_id, invoice_id, amount, paid_on, status="completed") -> None:
        self.tables[Payment].add(
            reference=f"PAY-{self.payment_no:07d}", customer_id=customer_id, invoice_id=invoice_id, amount=amount,
            method=self.rng.choice(("banktransfer", "creditcard", "creditcard", "check", "cash")), status=status,
            paid_at=_at(paid_on, 15) if status == "completed" else None, created_at=self.now, updated_at=self.now,
        )
        self.payment_no += 1

    def add_invoice(self, customer_id, issued, lines, *, service_id=None, period=None, paid_share=Decimal("1")):
        subtotal = sum((line_amount(q, p) for _, q, p, _ in lines), ZERO)
        status = "paid" if paid_share == 1 else "partially_paid" if paid_share > 0 else "issued"
        invoice_id = self.tables[Invoice].add(
            invoice_number=f"INV-{self.invoice_no:07d}", customer_id=customer_id, service_id=service_id,
            kind="subscription_period" if period else "manual", origin="local", status=status, issued_on=issued,
            due_on=issued + timedelta(days=14), period_start=period[0] if period else None,
            period_end=period[1] if period else None, currency_code="USD", subtotal=subtotal, tax_total=ZERO,
            total=subtotal, created_at=_at(issued), updated_at=_at(issued),
        )
        self.invoice_no += 1
        for position, (description, quantity, price, package_id) in enumerate(lines, start=1):
            self.tables[InvoiceLine].add(
                invoice_id=invoice_id, position=position, description=description, package_id=package_id,
                quantity=quantity, unit_price=price, amount=line_amount(quantity, price),
            )
        if paid_share > 0:
            paid = (subtotal * paid_share).quantize(Decimal("0.01"))
            self.add_payment(customer_id, invoice_id, paid, issued + timedelta(days=3))

    def add_customer(self, i: int) -> tuple[int, date, str]:
        """The customer row numbered `i`, with its planted bad data; returns (id, signup date, status)."""
        rng = self.rng
        signup = self.as_of - timedelta(days=rng.randint(20, 3 * 365))
        first, last = rng.choice(FIRST), rng.choice(LAST)
        is_business = rng.random() < 0.2
        account_type = "business" if is_business else "individual"
        email = f"{first}.{last}{i}@example.com".lower()
        if i % 100 == 42:
            account_type, email = "internal_test", f"qa+{i}@example.com"
        elif i % 250 == 7:
            email = f"{first}.{last}{i}.example.com".lower()  # bad data: no @, so Zoho would refuse it
        elif rng.random() < 0.03:
            email = ""  # seen in real data: no email on file
        if i % 1000 == 11:
            first = last = ""  # bad data: no name at all
        city, state, postal = rng.choice(CITIES)
        status = rng.choices(("active", "suspended", "closed"), weights=(92, 5, 3))[0]
        customer_id = self.tables[Customer].add(
            account_number=f"CT-{signup.year}-{i:05d}", email=email, first_name=first, last_name=last,
            company_name=f"{rng.choice(COMPANIES)} {last} LLC" if is_business and last else "",
            phone=f"+1-555-{rng.randint(100, 999)}-{rng.randint(1000, 9999)}", account_type=account_type,
            status=status, billing_street=f"{rng.randint(1, 9999)} Main St", billing_city=city, billing_state=state,
            billing_postal_code=postal, billing_country="United States", currency_code="USD",
            created_at=_at(signup), updated_at=_at(signup),
        )
        return customer_id, signup, status

    def service_status(self, customer_status: str) -> str:
        if customer_status == "closed":
            return "cancelled"
        if customer_status == "suspended":
            return "suspended"
        return self.rng.choices(("active", "pending", "cancelled"), weights=(90, 5, 5))[0]

    def add_services(self, customer_id: int, signup: date, status: str) -> None:
        """A plan (and sometimes an add-on) per customer, each with its period invoices."""
        rng = self.rng
        chosen = [rng.choice(self.plans)] + ([rng.choice(self.addons)] if rng.random() < 0.3 else [])
        for package_id, price, unit, _active, _addon, name in chosen:
            activated = signup + timedelta(days=rng.randint(0, 10))
            svc_status = self.service_status(status)
            cancelled_on = self.as_of - timedelta(days=rng.randint(1, 15)) if svc_status == "cancelled" else None
            service_id = self.tables[CustomerService].add(
                customer_id=customer_id, package_id=package_id, status=svc_status, quantity=1,
                activated_at=_at(activated) if svc_status != "pending" else None,
                cancelled_at=_at(max(cancelled_on, activated)) if cancelled_on else None,
                created_at=_at(signup), updated_at=_at(signup),
            )
            if svc_status != "pending":
                self.add_period_invoices(customer_id, service_id, package_id, price, unit, name, activated,
                                         cancelled_on)

    def add_period_invoices(self, customer_id, service_id, package_id, price, unit, name, activated, cancelled_on):
        periods = list(_periods(activated, unit, cancelled_on or self.as_of, 2))
        for index, period in enumerate(periods):
            latest = index == len(periods) - 1
            share = Decimal("1") if not latest else self.rng.choices(
                (Decimal("1"), Decimal("0.5"), Decimal("0")), weights=(80, 10, 10)
            )[0]
            self.add_invoice(customer_id, period[0], [(name, Decimal("1"), price, package_id)],
                             service_id=service_id, period=period, paid_share=share)

    def add_extras(self, customer_id: int) -> None:
        """One-off charges, a prepayment that becomes credit in Zoho, a failed payment: each for a few customers."""
        rng, as_of = self.rng, self.as_of
        if rng.random() < 0.25:
            charges = rng.sample(ONE_OFF_CHARGES, rng.randint(1, 2))
            lines = [(label, Decimal(rng.randint(1, 2)), Decimal(price), None) for label, price in charges]
            self.add_invoice(customer_id, as_of - timedelta(days=rng.randint(1, 60)), lines,
                             paid_share=rng.choice((Decimal("1"), Decimal("0"))))
        if rng.random() < 0.04:  # a prepayment with no invoice: becomes credit in Zoho
            self.add_payment(customer_id, None, Decimal(rng.choice(("20.00", "50.00", "100.00"))),
                             as_of - timedelta(days=2))
        if rng.random() < 0.01:
            self.add_payment(customer_id, None, Decimal("39.00"), as_of, status="failed")

    def flush(self) -> None:
        for table in self.tables.values():
            table.flush()

    def add_credits(self) -> int:
        """Credit notes and refunds, the last step and with no random draw (the data before them is unchanged): a
        service-outage credit on every CREDIT_EVERY-th one-off invoice, a partial refund of every CREDIT_EVERY-th
        completed payment of one. Written without save() or a signal, like the rest."""
        package = ServicePackage.objects.order_by("pk").first()
        invoices = Invoice.objects.filter(kind=Invoice.Kind.MANUAL, origin=Invoice.Origin.LOCAL).exclude(
            status__in=(Invoice.Status.DRAFT, Invoice.Status.VOID)).order_by("pk")
        payments = Payment.objects.filter(status=Payment.Status.COMPLETED, origin=Payment.Origin.LOCAL,
                                          invoice__kind=Invoice.Kind.MANUAL).order_by("pk")
        notes = [CreditNote(number=f"CN-{n:07d}", customer_id=invoice.customer_id, invoice=invoice, package=package,
                            amount=min(invoice.total, Decimal("10.00")), currency_code=invoice.currency_code,
                            issued_on=min(invoice.issued_on + timedelta(days=3), self.as_of),
                            reason="Service outage credit")
                 for n, invoice in enumerate(invoices[::CREDIT_EVERY], start=1)]
        notes += [CreditNote(number=f"RF-{n:07d}", kind=CreditNote.Kind.REFUND, customer_id=payment.customer_id,
                             payment=payment, amount=min(payment.amount, Decimal("5.00")),
                             currency_code=payment.currency_code, issued_on=self.as_of, reason="Goodwill refund")
                  for n, payment in enumerate(payments[::CREDIT_EVERY], start=1)]
        CreditNote.objects.bulk_create(notes, batch_size=500)
        return len(notes)


@transaction.atomic
def demo_seed(*, customers: int, seed: int, as_of: date) -> SeedReport:
    """Create `customers` customers with services, invoices and payments; the same arguments, the same data."""
    seeder = _Seeder(random.Random(seed), as_of)
    seeder.add_packages()
    first_number = seeder.tables[Customer].next_id
    for offset in range(customers):
        customer_id, signup, status = seeder.add_customer(first_number + offset)
        seeder.add_services(customer_id, signup, status)
        seeder.add_extras(customer_id)
        if (offset + 1) % CHUNK == 0:
            seeder.flush()
    seeder.flush()
    tables = seeder.tables
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            for sql in connection.ops.sequence_reset_sql(no_style(), list(tables)):
                cursor.execute(sql)
    counts = {m._meta.verbose_name_plural: t.written for m, t in tables.items()}
    return SeedReport(counts={**counts, CreditNote._meta.verbose_name_plural: seeder.add_credits()})
