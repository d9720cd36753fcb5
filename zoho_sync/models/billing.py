"""The business's own billing records: customers, service packages, customer services, invoices, payments.

Money is Decimal with two places. Database constraints hold what must never be stored; `clean()` adds the
checks that need a readable message or other rows (the admin and the sync engine both call them).
"""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q, Sum
from django.db.models.functions import Coalesce

from zoho_sync import validation
from zoho_sync.models.base import ZohoSyncedModel

ZERO = Decimal("0.00")


class PlainDecimalFormField(forms.DecimalField):
    """A decimal as a person writes it: Django's DecimalField also takes "1e3" and other scripts' digits."""

    default_error_messages = {"plain": validation.PLAIN_DECIMAL_MESSAGE}

    def to_python(self, value):
        number = super().to_python(value)  # "Enter a number." for text that is no number at all
        if number is not None and isinstance(value, str) and not validation.PLAIN_DECIMAL.fullmatch(value.strip()):
            raise ValidationError(self.error_messages["plain"], code="plain")
        return number


class PlainDecimalField(models.DecimalField):
    """A DecimalField whose admin form takes plain decimals only. Only the form differs: migrations see (and the
    database holds) a DecimalField."""

    def formfield(self, **kwargs):
        return super().formfield(**{"form_class": PlainDecimalFormField, **kwargs})

    def deconstruct(self):
        name, _path, args, kwargs = super().deconstruct()
        return name, "django.db.models.DecimalField", args, kwargs


def money_field(**kwargs) -> models.DecimalField:
    return PlainDecimalField(max_digits=12, decimal_places=2, **kwargs)


class EmailFormField(forms.EmailField):
    default_validators = [validation.validate_email_address]


class EmailAddressField(models.EmailField):
    """An email column whose model and form checks say what the sync engine says: "Email address 'x' is not
    valid." (Django's own wording differs between the form and the model.)"""

    default_validators = [validation.validate_email_address]

    def formfield(self, **kwargs):
        return super().formfield(**{"form_class": EmailFormField, **kwargs})


class Customer(ZohoSyncedModel):
    class AccountType(models.TextChoices):
        INDIVIDUAL = "individual", "Individual"
        BUSINESS = "business", "Business"
        INTERNAL_TEST = "internal_test", "Internal test (not synced)"

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        SUSPENDED = "suspended", "Suspended"
        CLOSED = "closed", "Closed"

    account_number = models.CharField(max_length=32, unique=True, validators=[validation.validate_account_number])
    email = EmailAddressField(blank=True, db_index=True)
    first_name = models.CharField(max_length=100, blank=True)
    last_name = models.CharField(max_length=100, blank=True)
    company_name = models.CharField(max_length=200, blank=True)
    phone = models.CharField(max_length=40, blank=True)
    account_type = models.CharField(max_length=16, choices=AccountType.choices, default=AccountType.INDIVIDUAL)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    billing_street = models.CharField(max_length=255, blank=True)
    billing_city = models.CharField(max_length=100, blank=True)
    billing_state = models.CharField(max_length=100, blank=True)
    billing_postal_code = models.CharField(max_length=20, blank=True)
    billing_country = models.CharField(max_length=100, blank=True)
    currency_code = models.CharField(max_length=3, default="USD", validators=[validation.validate_currency_code])
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["account_number"]
        indexes = [
            models.Index(fields=["sync_status", "next_retry_at"], name="customer_sync_queue"),
            models.Index(fields=["account_type"], name="customer_account_type"),
        ]

    def __str__(self) -> str:
        return f"{self.account_number} {self.name}".strip()

    @property
    def name(self) -> str:
        """The person's or company's name as people read it; empty when the record has none."""
        return self.company_name or " ".join(p for p in (self.first_name, self.last_name) if p)

    def clean(self) -> None:
        super().clean()
        if not self.name:
            raise ValidationError("Give a first name, a last name or a company name: Zoho needs a display name.")


class ServicePackage(ZohoSyncedModel):
    """A product the business sells on a schedule; becomes a Zoho product and plan (keyed by plan_code)."""

    class IntervalUnit(models.TextChoices):
        WEEKS = "weeks", "Weeks"
        MONTHS = "months", "Months"
        YEARS = "years", "Years"

    name = models.CharField(max_length=200)
    plan_code = models.CharField(max_length=100, unique=True, validators=[validation.validate_plan_code])
    description = models.TextField(blank=True)
    price = money_field(validators=[validation.validate_non_negative])
    interval = models.PositiveSmallIntegerField(default=1, help_text="Bill every N interval units.")
    interval_unit = models.CharField(max_length=8, choices=IntervalUnit.choices, default=IntervalUnit.MONTHS)
    is_active = models.BooleanField(default=True)
    zoho_product_id = models.CharField("Zoho product id", max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=Q(price__gte=0), name="package_price_not_negative"),
            models.CheckConstraint(condition=Q(interval__gte=1), name="package_interval_positive"),
        ]
        indexes = [models.Index(fields=["sync_status", "next_retry_at"], name="package_sync_queue")]

    def __str__(self) -> str:
        return f"{self.name} ({self.plan_code})"

    def clean(self) -> None:
        super().clean()
        # The field allows 0 (PositiveSmallIntegerField); the constraint needs at least 1.
        if self.interval is not None and self.interval < 1:
            raise ValidationError({"interval": "The interval must be at least 1."})


class CustomerService(ZohoSyncedModel):
    """A customer's subscription to a service package; an active one becomes a Zoho subscription."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        ACTIVE = "active", "Active"
        SUSPENDED = "suspended", "Suspended"
        CANCELLED = "cancelled", "Cancelled"
        EXPIRED = "expired", "Expired (its billing cycles ended in Zoho)"

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="services")
    package = models.ForeignKey(ServicePackage, on_delete=models.PROTECT, related_name="services")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    reference = models.CharField(
        max_length=64, blank=True, default="", db_default="",
        help_text="The business's own reference for the service (how an import finds it again); unique when given.")
    quantity = models.PositiveIntegerField(default=1)
    activated_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    # Zoho owns these: pulled from the subscription, never pushed.
    current_term_starts_on = models.DateField(null=True, blank=True, help_text="From Zoho.")
    current_term_ends_on = models.DateField(null=True, blank=True, help_text="From Zoho.")
    next_billing_on = models.DateField(null=True, blank=True, help_text="From Zoho.")
    zoho_child_invoice_id = models.CharField(
        max_length=64, blank=True, help_text="From Zoho: the invoice of its current term (a renewal's invoice is "
        "mirrored as this service's period invoice).")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "customer service"
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(status="active") | Q(activated_at__isnull=False), name="service_active_has_activated_at"
            ),
            models.CheckConstraint(
                condition=~Q(status="cancelled") | Q(cancelled_at__isnull=False),
                name="service_cancelled_has_cancelled_at",
            ),
            models.CheckConstraint(condition=Q(quantity__gte=1), name="service_quantity_positive"),
            # Blank references are many (services made in the admin); a given one names one service.
            models.UniqueConstraint(fields=["reference"], condition=~Q(reference=""), name="service_reference_unique",
                                    violation_error_message="Another service already has this reference."),
        ]
        indexes = [
            models.Index(fields=["sync_status", "next_retry_at"], name="service_sync_queue"),
            models.Index(fields=["status"], name="service_status"),
            models.Index(fields=["zoho_child_invoice_id"], name="service_child_invoice"),
        ]

    def __str__(self) -> str:
        return f"{self.zoho_reference_id} {self.package.name if self.package_id else ''}".strip()

    @property
    def zoho_reference_id(self) -> str:
        """The subscription's `reference_id` in Zoho: the natural key that finds it again (api doc §12.6)."""
        return f"CS-{self.pk}" if self.pk else ""

    def clean(self) -> None:
        super().clean()
        # The field allows 0 (PositiveIntegerField); the constraint needs at least 1.
        if self.quantity is not None and self.quantity < 1:
            raise ValidationError({"quantity": "The quantity must be at least 1."})
        if self.status == self.Status.ACTIVE and not self.activated_at:
            raise ValidationError({"activated_at": "An active service needs the time it was activated."})
        if self.status == self.Status.CANCELLED and not self.cancelled_at:
            raise ValidationError({"cancelled_at": "A cancelled service needs the time it was cancelled."})
        if self.activated_at and self.cancelled_at and self.cancelled_at < self.activated_at:
            raise ValidationError({"cancelled_at": "Cancelled at is before activated at: a service is cancelled "
                                                   "after it was activated."})


class Invoice(ZohoSyncedModel):
    class Kind(models.TextChoices):
        MANUAL = "manual", "One-off charge"
        SUBSCRIPTION_PERIOD = "subscription_period", "Subscription period"

    class Origin(models.TextChoices):
        LOCAL = "local", "Created here"
        ZOHO = "zoho", "Created by Zoho (mirrored)"

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        ISSUED = "issued", "Issued"
        PARTIALLY_PAID = "partially_paid", "Partially paid"
        PAID = "paid", "Paid"
        VOID = "void", "Void"

    invoice_number = models.CharField(max_length=64, unique=True)
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="invoices")
    service = models.ForeignKey(
        CustomerService, on_delete=models.PROTECT, related_name="invoices", null=True, blank=True
    )
    kind = models.CharField(max_length=24, choices=Kind.choices, default=Kind.MANUAL)
    origin = models.CharField(max_length=8, choices=Origin.choices, default=Origin.LOCAL)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ISSUED)
    issued_on = models.DateField()
    due_on = models.DateField(null=True, blank=True)
    period_start = models.DateField(null=True, blank=True)
    period_end = models.DateField(null=True, blank=True)
    currency_code = models.CharField(max_length=3, default="USD", validators=[validation.validate_currency_code])
    subtotal = money_field(default=ZERO, validators=[validation.validate_non_negative])
    tax_total = money_field(default=ZERO, validators=[validation.validate_non_negative])
    total = money_field(default=ZERO, validators=[validation.validate_non_negative])
    balance_due = money_field(null=True, blank=True, help_text="What is left to pay, as Zoho says (pulled).")
    notes = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-issued_on", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(subtotal__gte=0) & Q(tax_total__gte=0), name="invoice_amounts_not_negative"
            ),
            models.CheckConstraint(
                condition=Q(total=models.F("subtotal") + models.F("tax_total")), name="invoice_total_is_sum"
            ),
            models.CheckConstraint(
                condition=~Q(kind="subscription_period") | (Q(service__isnull=False) & Q(period_start__isnull=False)),
                name="period_invoice_has_service_and_period",
            ),
            models.CheckConstraint(
                condition=Q(due_on__isnull=True) | Q(due_on__gte=models.F("issued_on")), name="invoice_due_after_issue"
            ),
            models.CheckConstraint(
                condition=Q(period_end__isnull=True) | Q(period_end__gte=models.F("period_start")),
                name="invoice_period_ordered",
            ),
        ]
        indexes = [
            models.Index(fields=["sync_status", "next_retry_at"], name="invoice_sync_queue"),
            models.Index(fields=["kind", "origin"], name="invoice_kind_origin"),
            models.Index(fields=["-issued_on", "-id"], name="invoice_list_order"),
        ]

    def __str__(self) -> str:
        return self.invoice_number

    def amount_paid(self, *, excluding_payment_pk: int | None = None) -> Decimal:
        """Completed payments applied to this invoice (a query: call it once, not per row in a list)."""
        payments = self.payments.filter(status=Payment.Status.COMPLETED)
        if excluding_payment_pk:
            payments = payments.exclude(pk=excluding_payment_pk)
        return payments.aggregate(paid=Coalesce(Sum("amount"), ZERO))["paid"]

    def clean(self) -> None:
        super().clean()
        errors: dict[str, str] = {}
        amounts = (self.subtotal, self.tax_total, self.total)
        if None not in amounts and self.subtotal + self.tax_total != self.total:
            errors["total"] = f"The total {self.total} is not the subtotal {self.subtotal} plus tax {self.tax_total}."
        if self.kind == self.Kind.SUBSCRIPTION_PERIOD and not (self.service_id and self.period_start):
            errors["service"] = "A subscription-period invoice needs its service and the period it bills."
        if self.service_id and self.customer_id and self.service.customer_id != self.customer_id:
            errors["service"] = "The service belongs to another customer."
        if self.due_on and self.issued_on and self.due_on < self.issued_on:
            errors["due_on"] = "The due date is before the issue date."
        if self.period_start and self.period_end and self.period_end < self.period_start:
            errors["period_end"] = "The period ends before it starts."
        if errors:
            raise ValidationError(errors)

    def totals_problems(self) -> list[str]:
        """Why the stored totals disagree with the stored lines (one query)."""
        return validation.invoice_totals_problems(
            subtotal=self.subtotal,
            tax_total=self.tax_total,
            total=self.total,
            line_amounts=self.lines.values_list("amount", flat=True),
        )


class InvoiceLine(models.Model):
    """One line of an invoice; sent to Zoho inside the invoice as `invoice_items[]`, not synced alone."""

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="lines")
    position = models.PositiveSmallIntegerField(default=1)
    description = models.CharField(max_length=255)
    package = models.ForeignKey(ServicePackage, on_delete=models.PROTECT, null=True, blank=True)
    quantity = PlainDecimalField(
        max_digits=10, decimal_places=2, default=Decimal("1.00"), validators=[validation.validate_positive]
    )
    unit_price = money_field(validators=[validation.validate_non_negative])
    amount = money_field(editable=False, help_text="Quantity times unit price, rounded to the cent.")

    class Meta:
        ordering = ["invoice", "position", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gt=0), name="line_quantity_positive"),
            models.CheckConstraint(
                condition=Q(unit_price__gte=0) & Q(amount__gte=0), name="line_amounts_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.description} x {self.quantity}"

    def save(self, *args, **kwargs):
        validation.refuse_imprecise_money(self)
        validation.refuse_null_characters(self, fields=kwargs.get("update_fields"))
        if self.quantity is not None and self.unit_price is not None:
            self.amount = validation.line_amount(self.quantity, self.unit_price)
        super().save(*args, **kwargs)

    def clean_fields(self, exclude=None):
        validation.clean_fields_and_text(self, exclude, super().clean_fields)


class Payment(ZohoSyncedModel):
    class Method(models.TextChoices):
        # Values are Zoho's `payment_mode` names (api doc §3.8).
        BANK_TRANSFER = "banktransfer", "Bank transfer"
        CREDIT_CARD = "creditcard", "Credit card"
        CASH = "cash", "Cash"
        CHECK = "check", "Check"
        BANK_REMITTANCE = "bankremittance", "Bank remittance"
        OTHERS = "others", "Other"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        COMPLETED = "completed", "Completed"
        FAILED = "failed", "Failed"
        REFUNDED = "refunded", "Refunded"

    class Origin(models.TextChoices):
        LOCAL = "local", "Recorded here"
        ZOHO = "zoho", "Recorded in Zoho (mirrored)"

    reference = models.CharField(max_length=64, unique=True)
    origin = models.CharField(max_length=8, choices=Origin.choices, default=Origin.LOCAL)
    refunded_amount = money_field(default=ZERO, help_text="Refunded in Zoho (pulled).")
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="payments")
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="payments", null=True, blank=True)
    amount = money_field(validators=[validation.validate_positive])
    currency_code = models.CharField(max_length=3, default="USD", validators=[validation.validate_currency_code])
    method = models.CharField(max_length=16, choices=Method.choices, default=Method.BANK_TRANSFER)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    paid_at = models.DateTimeField(null=True, blank=True)
    notes = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="payment_amount_positive"),
            models.CheckConstraint(
                condition=~Q(status="completed") | Q(paid_at__isnull=False), name="payment_completed_has_paid_at"
            ),
        ]
        indexes = [
            models.Index(fields=["sync_status", "next_retry_at"], name="payment_sync_queue"),
            models.Index(fields=["status"], name="payment_status"),
        ]

    def __str__(self) -> str:
        return self.reference

    def clean(self) -> None:
        super().clean()
        if self.status == self.Status.COMPLETED and not self.paid_at:
            raise ValidationError({"paid_at": "A completed payment needs the time it was paid."})
        if not self.invoice_id or self.amount is None:
            return
        if self.customer_id and self.invoice.customer_id != self.customer_id:
            raise ValidationError({"invoice": "The invoice belongs to another customer."})
        if self.status in (self.Status.PENDING, self.Status.COMPLETED):
            # An import checking a whole file sets `paid_by_others` (the invoice's other completed payments as the
            # file leaves them) instead of one query per row.
            paid = getattr(self, "paid_by_others", None)
            if paid is None:
                paid = self.invoice.amount_paid(excluding_payment_pk=self.pk)
            balance = self.invoice.total - paid
            problem = validation.payment_amount_problem(
                amount=self.amount, invoice_number=self.invoice.invoice_number, balance=balance
            )
            if problem:
                raise ValidationError({"amount": problem})
