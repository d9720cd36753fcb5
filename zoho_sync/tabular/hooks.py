"""What two entities check beyond their own row: an invoice's lines against its totals (as the admin's line
formset does) and a payment against its invoice's balance (as Payment.clean() does, for a whole file at once)."""

from __future__ import annotations

from decimal import Decimal

from zoho_sync.models import InvoiceLine

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


def line_tuple(line: InvoiceLine) -> tuple:
    return (line.position, line.description, line.package_id, line.quantity, line.unit_price)
