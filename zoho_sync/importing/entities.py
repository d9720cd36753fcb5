"""What one importable entity is (ImportEntity); each entity module holds its own (its spec's `importing`):
columns, natural key and example rows (data, not code).

The examples chain: the customer, package, service, invoice and payment templates name each other, so importing
the five templates in this order works on an empty database.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import models

from zoho_sync import entities as registry
from zoho_sync.importing.columns import Column
from zoho_sync.importing.hooks import EntityHooks
from zoho_sync.models import InvoiceLine


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


def importable() -> dict[str, ImportEntity]:
    """Every entity's import (its spec's `importing`), by --entity name, in dependency order."""
    return {spec.importing.name: spec.importing for spec in registry.SPECS if spec.importing is not None}


def entity_named(name: str) -> ImportEntity:
    """The entity an --entity value names: the one set of names (entities.ENTITY_CHOICES) or an alias of one."""
    return importable()[registry.entity_name(name)]


def __getattr__(name: str):
    if name == "ENTITIES":  # read from the registry when asked: the entity modules define their columns
        return importable()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def describe(entity: ImportEntity) -> str:
    """The column documentation of one entity, as --help, the template's docs and docs/import.md print it."""
    lines = [f"{entity.name} (one {entity.noun} per row, found again by {entity.key}):"]
    if entity.shape:
        lines.append(f"  {entity.shape}")
    lines += [f"  {c.describe(entity.model_field(c))}" for c in entity.all_columns]
    return "\n".join(lines)
