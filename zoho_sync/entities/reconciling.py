"""What reconciliation compares of an entity (its spec's `reconcile`): the fields we own and how each is read on
both sides, the fields Zoho owns, the amount summed, and when a listed record must be read to compare."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from zoho_sync.wire import inbound

OURS, ZOHOS = "ours", "zoho"


def text(value) -> str:
    return "" if value is None else str(value).strip()


def day(value) -> str:
    found = inbound.zoho_date(value) if not hasattr(value, "isoformat") else value
    return found.isoformat()[:10] if found else ""


def nested(record: dict, key: str) -> tuple[bool, Any]:
    """(whether `record` has `key`, its value), for a dotted key too."""
    found: Any = record
    for part in key.split("."):
        if not isinstance(found, dict) or part not in found:
            return False, None
        found = found[part]
    return True, found


@dataclass(frozen=True)
class Field:
    name: str  # as reports say it
    local: Callable[[Any], Any]
    zoho_key: str
    owner: str  # OURS or ZOHOS
    kind: str = "field"  # field, amount, status
    norm: Callable[[Any], str] = text
    column: str = ""  # a number: the local column that bounds it (read by inbound.zoho_number)

    def values(self, spec, obj, remote: dict) -> tuple[str, str]:
        """(here, in Zoho) as comparable text; `zoho_key` may name a nested key ("plan.quantity")."""
        there = nested(remote, self.zoho_key)[1]
        if not self.column:
            return self.norm(self.local(obj)), self.norm(there)
        to = inbound.column(spec.model, self.column)
        here = inbound.zoho_number(self.local(obj), to, key=self.name)
        return text(here), text(inbound.zoho_number(there, to, key=self.zoho_key))


@dataclass(frozen=True)
class Reconcile:
    fields: tuple[Field, ...] = ()  # the fields we own, compared with Zoho's listing
    # The fields Zoho owns that a listing carries, compared with what the spec's reverse direction (from_zoho, the
    # very mapping the pull step applies) makes of the listed record: what a pull would change is the drift,
    # nothing else. A field never pulled here (an invoice's balance before any event) is not compared yet.
    zoho_owned: tuple[tuple[str, str], ...] = ()  # (local field, kind)
    money: tuple[str, str] | None = None  # (local field, Zoho key) summed on both sides
    # Fields of ours that Zoho's listing leaves out: whether a listed record needs a read to compare them.
    read_when: Callable[[Any, dict], bool] | None = None
