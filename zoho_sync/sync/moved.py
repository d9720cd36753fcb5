"""Old addresses of per-entity names: payloads, remote calls and inbound mappings moved from sync/payloads.py,
sync/remote.py and sync/inbound.py to their entity's module (zoho_sync/entities/<entity>.py). Those modules keep
their shared helpers and forward any other name here, so `from zoho_sync.sync.payloads import customer_to_zoho`
still works."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from typing import Any


def forward_to_entities(module_name: str) -> Callable[[str], Any]:
    """A module `__getattr__` finding a name it no longer defines in the entity modules."""

    def __getattr__(name: str) -> Any:
        if name.startswith("__"):  # the import system's own probes (__path__, __spec__...): not ours
            raise AttributeError(f"module {module_name!r} has no attribute {name!r}")
        entities = importlib.import_module("zoho_sync.entities")
        for found in pkgutil.iter_modules(entities.__path__):
            module = importlib.import_module(f"zoho_sync.entities.{found.name}")
            if name in vars(module):
                return vars(module)[name]
        raise AttributeError(f"module {module_name!r} has no attribute {name!r}")

    return __getattr__
