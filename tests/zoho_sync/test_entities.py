"""The entity registry: every module of zoho_sync/entities with a SPEC is an entity, in the specs' order, each
after the entities it depends on; a toy seventh entity dropped into the package is found and placed, and one
ordered before its dependency is refused at import with the names."""

from __future__ import annotations

import sys

import pytest
from django.core.exceptions import ImproperlyConfigured

from zoho_sync import entities


def test_the_registry_lists_each_entity_module_in_dependency_order():
    assert [spec.name for spec in entities.SPECS] == [
        "customer", "service_package", "customer_service", "invoice", "payment", "credit_note"]
    seen: set[str] = set()
    for spec in entities.SPECS:
        assert {dependency for _, dependency in spec.depends_on} <= seen, spec.name
        seen.add(spec.name)


def toy_module(tmp_path, monkeypatch, *, order: int, depends_on: str) -> None:
    """A seventh entity module in the package: a copy of the service packages' spec under another name."""
    (tmp_path / "zz_toys.py").write_text(
        "import dataclasses\n"
        "from zoho_sync.entities import plans\n"
        f"SPEC = dataclasses.replace(plans.SPEC, name='toy', order={order}, depends_on={depends_on})\n")
    monkeypatch.setattr(entities, "__path__", [*entities.__path__, str(tmp_path)])
    monkeypatch.delitem(sys.modules, "zoho_sync.entities.zz_toys", raising=False)


def test_a_seventh_entity_module_is_found_and_placed_by_its_order(tmp_path, monkeypatch):
    toy_module(tmp_path, monkeypatch, order=45, depends_on="(('customer', 'customer'),)")
    names = [spec.name for spec in entities._discover()]
    assert names == ["customer", "service_package", "customer_service", "invoice", "toy", "payment", "credit_note"]
    assert "toy" not in entities.BY_NAME, "the registry read at import is not changed by a later discovery"


def test_an_entity_ordered_before_its_dependency_is_refused(tmp_path, monkeypatch):
    toy_module(tmp_path, monkeypatch, order=5, depends_on="(('invoice', 'invoice'),)")
    with pytest.raises(ImproperlyConfigured, match=r"Entity toy \(order 5\) depends on invoice"):
        entities._discover()
