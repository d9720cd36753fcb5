"""Bring a business's existing records into the mirror models from CSV files (`manage.py zoho_import`).

`entities.py` says what an importable entity is (each entity module in zoho_sync.entities holds its own
columns, as its spec's `importing`), `columns.py` how a cell becomes a value, `importer.py` checks
and writes the rows, `hooks.py` holds the checks that span rows (invoice lines, payment balances).
"""

from __future__ import annotations

import io

from zoho_sync.csv_cells import SafeWriter
from zoho_sync.importing.entities import ImportEntity, describe, entity_named, importable
from zoho_sync.importing.importer import OUTCOMES, FileRefused, ImportReport, RowResult, import_rows


def template(entity: ImportEntity) -> str:
    """A CSV template: the header with every column, then an example row (an invoice: two rows, two lines). Cells
    a spreadsheet would read as a formula are written as text (csv_cells)."""
    out = io.StringIO()
    writer = SafeWriter(out, lineterminator="\n")
    names = [c.name for c in entity.all_columns]
    writer.writerow(names)
    example = {c.name: c.example for c in entity.all_columns}
    writer.writerow([example[n] for n in names])
    for extra in entity.extra_examples:
        writer.writerow([{**example, **extra}[n] for n in names])
    return out.getvalue()




def __getattr__(name: str):
    if name == "ENTITIES":  # every entity's import, by --entity name (read from the registry when asked)
        return importable()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [ "OUTCOMES", "FileRefused", "ImportEntity", "ImportReport", "RowResult",
           "describe", "entity_named", "import_rows", "importable", "template"]
