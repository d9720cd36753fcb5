"""The importable entities: every entity whose spec has `importing` (an ImportEntity, zoho_sync.tabular), by
--entity name. The examples chain: the customer, package, service, invoice, payment and credit note templates
name each other, so importing the templates in this order works on an empty database.
"""

from __future__ import annotations

from zoho_sync import entities as registry
from zoho_sync.tabular.entity import ImportEntity, describe  # noqa: F401  (their old address)


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
