"""What two entities check beyond their own row: an invoice's lines against its totals (as the admin's line
formset does) and a payment against its invoice's balance (as Payment.clean() does, for a whole file at once)."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db.models import Sum

from zoho_sync import validation
from zoho_sync.models import InvoiceLine, Payment
from zoho_sync.signals import triggers_muted

ZERO = Decimal("0.00")


class EntityHooks:
    """No-op hooks. `prepare` runs once per batch (bulk queries only) with the rows that parsed and the batch's
    existing records by natural key; `before_clean` just before the model's
    clean() of a row; `accepted` after a row passed; `write` after the batch's records are written."""

    def prepare(self, records, existing: dict) -> None:
        pass

    def before_clean(self, record) -> None:
        pass

    def accepted(self, record) -> None:
        pass

    def write(self, records) -> None:
        pass


class PaymentHooks(EntityHooks):
    """The balance a payment is checked against: the invoice's completed payments in the database, other than
    those in this batch, plus the completed payments accepted on earlier rows of this batch (earlier batches are
    already written inside the import's transaction). So two payments that together pay more than an invoice's
    balance are refused from the one that goes over, in file order."""

    def prepare(self, records, existing: dict) -> None:
        ids = {r.values["invoice"].pk for r in records if r.values.get("invoice") is not None}
        refs = [r.key for r in records]
        rows = (Payment.objects.filter(invoice_id__in=ids, status=Payment.Status.COMPLETED)
                .exclude(reference__in=refs).values("invoice_id").annotate(paid=Sum("amount")).order_by())
        self.paid = defaultdict(lambda: ZERO, {row["invoice_id"]: row["paid"] for row in rows})

    def before_clean(self, record) -> None:
        if record.obj.invoice_id:
            record.obj.paid_by_others = self.paid[record.obj.invoice_id]

    def accepted(self, record) -> None:
        payment = record.obj
        if payment.invoice_id and payment.status == Payment.Status.COMPLETED:
            self.paid[payment.invoice_id] += payment.amount


class InvoiceHooks(EntityHooks):
    """Each row of an invoice is one line; the lines must add up to the subtotal, with the admin's words. A changed
    set of lines replaces the old one and counts as a change of the invoice ("lines")."""

    def prepare(self, records, existing: dict) -> None:
        ids = [existing[r.key].pk for r in records if r.key in existing]
        self.existing = defaultdict(list)
        for line in InvoiceLine.objects.filter(invoice_id__in=ids).order_by("invoice_id", "position", "id"):
            self.existing[line.invoice_id].append(line_tuple(line))

    def before_clean(self, record) -> None:
        lines = []
        for position, (row, values) in enumerate(record.lines, start=1):
            line = InvoiceLine(position=position, **values)
            if line.quantity is not None and line.unit_price is not None:
                line.amount = validation.line_amount(line.quantity, line.unit_price)
            try:
                line.clean_fields(exclude=["invoice", "package"])  # the package was resolved for the batch
            except ValidationError as exc:
                record.refuse(*record.messages_of(exc, lines=True), row=row)
            lines.append(line)
        record.new_lines = lines
        if record.problems:
            return
        invoice = record.obj
        for problem in validation.invoice_totals_problems(subtotal=invoice.subtotal, tax_total=invoice.tax_total,
                                                          total=invoice.total, line_amounts=[x.amount for x in lines]):
            record.late_problems.append(problem)  # after clean(): its own totals message comes first
        if invoice.pk and [line_tuple(x) for x in lines] != self.existing.get(invoice.pk):
            record.changed.append("lines")

    def write(self, records) -> None:
        replaced = [r.obj.pk for r in records if r.outcome == "changed" and "lines" in r.changed]
        # Triggers muted: a deleted line would otherwise mark its invoice changed and queue its push one line at a
        # time; the import's own bookkeeping write already marks the invoice changed.
        with triggers_muted():
            InvoiceLine.objects.filter(invoice_id__in=replaced).delete()
        lines = []
        for record in records:
            if record.outcome == "created" or (record.outcome == "changed" and "lines" in record.changed):
                for line in record.new_lines:
                    line.pk, line.invoice_id = None, record.obj.pk
                    lines.append(line)
        InvoiceLine.objects.bulk_create(lines, batch_size=1000)


def line_tuple(line: InvoiceLine) -> tuple:
    return (line.position, line.description, line.package_id, line.quantity, line.unit_price)
