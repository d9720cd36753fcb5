"""What one importable entity is (ImportEntity): its model, natural key, columns and example rows (data, not
code); each entity module holds its own as its spec's `importing`."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import models

from zoho_sync.models import InvoiceLine
from zoho_sync.tabular.columns import Column
from zoho_sync.tabular.hooks import EntityHooks


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


def describe(entity: ImportEntity) -> str:
    """The column documentation of one entity, as --help, the template's docs and docs/import.md print it."""
    lines = [f"{entity.name} (one {entity.noun} per row, found again by {entity.key}):"]
    if entity.shape:
        lines.append(f"  {entity.shape}")
    lines += [f"  {c.describe(entity.model_field(c))}" for c in entity.all_columns]
    return "\n".join(lines)
