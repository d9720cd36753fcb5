"""The sandbox's in-memory records: one table per resource, deterministic ids, events, snapshots.

One re-entrant lock (`store.lock`) guards everything; the app holds it for the whole of a handler, so each
request sees and leaves a consistent state. Keys starting with "_" are internal and never sent to clients.
The tables are the resources' (their `Resource` rows name them, resources/__init__.py) plus the store's own
event log; the store knows no resource by name.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date
from typing import Any

from zoho_sync.sandbox.clock import parse_zoho_timestamp, utc_date, zoho_timestamp
from zoho_sync.sandbox.config import SandboxConfig
from zoho_sync.sandbox.errors import not_found

EVENTS = "events"  # the store's own table: every event emitted (§3.10), served by resources/events.py
# Zoho ids are long digit strings such as "903000000000099" (§3 value formats); one counter serves them all.
ID_BASE = 903000000000000
SNAPSHOT_VERSION = 1


def public(record: dict[str, Any]) -> dict[str, Any]:
    """The record without its internal ("_"-prefixed) keys."""
    return {k: v for k, v in record.items() if not k.startswith("_")}


Reaction = Callable[["Store", dict[str, Any]], None]


def __getattr__(name: str) -> Any:
    """`store.RESOURCES`, the old literal list of table names, now read from the Resource rows."""
    if name == "RESOURCES":
        from zoho_sync.sandbox.resources import TABLES

        return (*TABLES, EVENTS)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class Store:
    """The records of `tables` (and the event log), and the `reactions` resources registered to what happens
    to other resources' records (`announce`)."""

    def __init__(self, clock: Any, config: Callable[[], SandboxConfig], *, tables: Iterable[str],
                 reactions: Mapping[str, Sequence[Reaction]] | None = None) -> None:
        self.lock = threading.RLock()
        self.clock = clock
        self._config = config
        self.table_names = (*tables, EVENTS)
        self.reactions = {name: tuple(found) for name, found in (reactions or {}).items()}
        self.listeners: list[Callable[[dict[str, Any]], None]] = []
        self.clear()

    @property
    def config(self) -> SandboxConfig:
        return self._config()

    def clear(self) -> None:
        with self.lock:
            self.tables: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in self.table_names}
            self.sequence = 0
            self.invoice_sequence = 0
            # Only ever grows, so the state file also notices a reset as a change to save.
            self.version = getattr(self, "version", 0) + 1

    # -- ids, time -------------------------------------------------------------------------------------
    def new_id(self) -> str:
        self.sequence += 1
        return str(ID_BASE + self.sequence)

    def now(self) -> float:
        return self.clock.time()

    def today(self) -> date:
        return utc_date(self.now())

    def timestamp(self) -> str:
        return zoho_timestamp(self.now())

    def stamp(self, record: dict[str, Any], field: str) -> str:
        """Set `record[field]` (its modified time) to now, and note the write.

        Zoho's timestamps have whole seconds, so two changes of one record within a second would look alike
        to a stale-write guard; the stamp is then one second past the previous one instead, so each record's
        modified time strictly increases (it may run a second or two ahead of the clock in a burst).
        """
        now = int(self.now())
        previous = parse_zoho_timestamp(record.get(field) or "")
        if previous is not None and now <= previous:
            now = previous + 1
        record[field] = zoho_timestamp(now)
        self.touch()
        return record[field]

    def touch(self) -> None:
        """Note a write, so the state file knows there is something to save."""
        self.version += 1

    # -- tables ----------------------------------------------------------------------------------------
    def get(self, resource: str, key: str) -> dict[str, Any] | None:
        return self.tables[resource].get(key)

    def require(self, resource: str, key: str, label: str) -> dict[str, Any]:
        record = self.tables[resource].get(key)
        if record is None:
            raise not_found(label)
        return record

    def put(self, resource: str, key: str, record: dict[str, Any]) -> dict[str, Any]:
        self.tables[resource][key] = record
        self.touch()
        return record

    def remove(self, resource: str, key: str) -> None:
        del self.tables[resource][key]
        self.touch()

    def all(self, resource: str) -> list[dict[str, Any]]:
        if resource == EVENTS:
            self.prune_events()
        return list(self.tables[resource].values())

    def counts(self) -> dict[str, int]:
        return {name: len(table) for name, table in self.tables.items()}

    def announce(self, happening: str, record: dict[str, Any]) -> None:
        """Tell the resources that react to `happening` (say "invoice_voided") about `record`, in registry order.
        Internal bookkeeping between resources, not a Zoho event (no webhook, nothing in GET /events)."""
        for react in self.reactions.get(happening, ()):
            react(self, record)

    # -- events (§3.10, §12.12) ------------------------------------------------------------------------
    def emit(self, event_type: str, key: str, entity: dict[str, Any]) -> dict[str, Any]:
        """Record an event and hand it to the listeners (the webhook dispatcher)."""
        now = self.now()
        event_id = self.new_id()
        body = {"event_id": event_id, "event_type": event_type, "event_time": zoho_timestamp(now),
                "data": {key: entity}}
        event = {"event_id": event_id, "event_type": event_type, "event_time": body["event_time"],
                 "payload": json.dumps(body), "webhooks": [], "_ts": now}
        self.put(EVENTS, event_id, event)
        self.prune_events()
        for listener in self.listeners:
            listener(event)
        return event

    def prune_events(self) -> None:
        cutoff = self.now() - self.config.events_retention_days * 86400
        table = self.tables[EVENTS]
        for event_id in [e for e, rec in table.items() if rec["_ts"] < cutoff]:
            del table[event_id]

    # -- persistence -----------------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return json.loads(json.dumps({
                "version": SNAPSHOT_VERSION, "sequence": self.sequence,
                "invoice_sequence": self.invoice_sequence, "tables": self.tables,
            }))

    def restore(self, data: dict[str, Any]) -> None:
        if data.get("version") != SNAPSHOT_VERSION:
            raise ValueError(f"unsupported sandbox state version {data.get('version')!r}")
        with self.lock:
            self.clear()
            self.sequence = int(data["sequence"])
            self.invoice_sequence = int(data["invoice_sequence"])
            for name in self.table_names:
                self.tables[name] = dict(data["tables"].get(name, {}))
