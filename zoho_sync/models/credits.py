"""Credit notes and refunds: money the business gives back, as Zoho's credit notes.

A credit note credits a customer, against one of its invoices (applied to that invoice's balance) or as credit
the customer keeps. A refund pays money back on a completed payment; Zoho records it as a credit note made for
the payment and refunded at once (POST /payments/{id}/refunds). Both are one record here, told apart by `kind`.
"""

from __future__ import annotations

from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from zoho_sync import validation
from zoho_sync.models.base import ZohoSyncedModel
from zoho_sync.models.billing import Customer, Invoice, Payment, ServicePackage, money_field

ZERO = Decimal("0.00")


class CreditNote(ZohoSyncedModel):
    class Kind(models.TextChoices):
        CREDIT = "credit", "Credit note"
        REFUND = "refund", "Refund of a payment"

    class Status(models.TextChoices):
        # Zoho's credit-note statuses, pulled; "open" until Zoho says otherwise.
        DRAFT = "draft", "Draft"
        OPEN = "open", "Open"
        CLOSED = "closed", "Closed"
        VOID = "void", "Void"

    class Origin(models.TextChoices):
        LOCAL = "local", "Made here"
        ZOHO = "zoho", "Made in Zoho (mirrored)"

    number = models.CharField("credit note number", max_length=64, unique=True)
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.CREDIT)
    origin = models.CharField(max_length=8, choices=Origin.choices, default=Origin.LOCAL)
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="credit_notes")
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="credit_notes", null=True,
                                blank=True, help_text="The invoice it credits (its balance); empty: the customer "
                                                      "keeps the credit.")
    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="refunds", null=True, blank=True,
                                help_text="The payment a refund pays back.")
    package = models.ForeignKey(ServicePackage, on_delete=models.PROTECT, null=True, blank=True,
                                help_text="The service package credited (Zoho's item code); empty: the invoice's.")
    amount = money_field(validators=[validation.validate_positive])
    currency_code = models.CharField(max_length=3, default="USD", validators=[validation.validate_currency_code])
    issued_on = models.DateField()
    reason = models.CharField(max_length=255, blank=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.OPEN,
                              help_text="From Zoho.")
    balance = money_field(null=True, blank=True, help_text="Credit not yet used, from Zoho.")
    zoho_refund_id = models.CharField("Zoho refund id", max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="creditnote_amount_positive"),
            models.CheckConstraint(condition=~Q(kind="refund") | Q(payment__isnull=False),
                                   name="creditnote_refund_has_payment"),
        ]
        indexes = [models.Index(fields=["sync_status", "next_retry_at"], name="creditnote_sync_queue")]

    def __str__(self) -> str:
        return self.number

    def clean(self) -> None:
        super().clean()
        errors: dict[str, str] = {}
        if self.kind == self.Kind.REFUND:
            if not self.payment_id:
                errors["payment"] = "A refund needs the payment it pays back."
            elif self.customer_id and self.payment.customer_id != self.customer_id:
                errors["payment"] = "The payment belongs to another customer."
            elif self.payment.status != Payment.Status.COMPLETED and self.payment.status != Payment.Status.REFUNDED:
                errors["payment"] = "Only a completed payment can be refunded."
            elif self.amount is not None:
                others = (self.payment.refunds.exclude(pk=self.pk).exclude(status=self.Status.VOID)
                          .aggregate(total=models.Sum("amount"))["total"] or ZERO)
                left = self.payment.amount - others
                if self.amount > left:
                    errors["amount"] = f"At most {left} of payment {self.payment.reference} is left to refund."
        elif self.payment_id:
            errors["payment"] = "Only a refund names a payment."
        if self.invoice_id and self.customer_id and self.invoice.customer_id != self.customer_id:
            errors["invoice"] = "The invoice belongs to another customer."
        if self.invoice_id and self.amount is not None and self.kind == self.Kind.CREDIT and \
                self.amount > self.invoice.total:
            errors["amount"] = f"A credit note against invoice {self.invoice.invoice_number} is at most its " \
                               f"total ({self.invoice.total})."
        if errors:
            raise ValidationError(errors)
