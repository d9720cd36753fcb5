"""EntitySpec: everything that differs between entities, as data; and the small nouns its fields are made of.

Generic code (the engine, pull, the inbox, reconciliation, link, import, metrics, the admin) reads an entity only
through its spec, found in the registry (`zoho_sync.entities`). A fact that differs by entity is a field here, set
in the entity's own module; a generic module that needs an `if` on the entity means a field is missing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from django.db.models import QuerySet

from zoho_sync.conf import get_sync_settings
from zoho_sync.entities.reconciling import Reconcile


@dataclass
class PullOutcome:
    """What applying one Zoho record here did (sync/pull.py, and an entity's mirror)."""

    entity: str
    pk: int | None
    action: str  # updated, created, unchanged, stale, unknown
    message: str
    changes: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Events:
    """Which of Zoho's webhook events are about this entity, and where the inbox reads the record again."""

    data_key: str  # the entity's key under an event's `data` ("payment")
    read_path: str  # where the API reads one record again ("/payments/{}")
    prefixes: tuple[str, ...] = ()  # event types starting with one of these ("payment_")
    types: tuple[str, ...] = ()  # and these exact event types ("invoice_created")

    def covers(self, event_type: str) -> bool:
        return event_type in self.types or any(event_type.startswith(prefix) for prefix in self.prefixes)

    def first_type(self) -> str:
        """An event type of this entity (the one reconciliation's differences stand for)."""
        return self.types[0] if self.types else self.prefixes[0]


@dataclass(frozen=True)
class LinkRule:
    """How one entity's Zoho records are matched by `zoho_backfill --link-only`, beyond its natural key
    (spec.remote_key / spec.local_key)."""

    remote_keys: Callable[[dict], set[str]] | None = None  # several keys a record may carry (default: remote_key)
    remote_email: Callable[[dict], str] | None = None  # a second way to match, where the key finds nothing
    local_email: Callable[[object], str] | None = None
    # The key a record states in our own form: one naming another record is that record's, never an email match.
    named_key: Callable[[dict], str] = lambda record: ""
    # (attribute, key): a listed record's field naming a dependency's Zoho id; it must be the id our dependency
    # has (or gets now). Zoho's listings name the customer by customer_id.
    dependency_keys: tuple[tuple[str, str], ...] = (("customer", "customer_id"),)


@dataclass(frozen=True)
class EntitySpec:
    name: str  # in logs, the CLI and SyncLog.entity
    order: int  # its place in SPECS: after every entity it depends on (the registry checks it)
    model: type
    zoho_entity: str  # the Zoho resource, for the sync log
    id_field: str  # the key of the Zoho id in the created record
    list_path: str  # the list endpoint a backfill reads to build its index of existing records
    list_key: str
    remote_key: Callable[[dict], str]  # natural key of a listed Zoho record
    local_key: Callable[[Any], str]  # natural key of a local record (same value when they are the same record)
    to_zoho: Callable[..., dict]  # the request body (pure); remote functions add only what Zoho alone knows
    fingerprint: Callable[[Any], dict]  # what, when changed, must be sent again
    create: Callable[..., dict]
    update: Callable[..., str]
    find: Callable[..., dict | None]  # one lookup by natural key, when an earlier create may have landed
    depends_on: tuple[tuple[str, str], ...] = ()  # (attribute, spec name) that must have a Zoho id first
    skip_reason: Callable[[Any], str | None] = lambda obj: None
    prepare: Callable[[QuerySet], QuerySet] = lambda qs: qs  # select_related and annotations for the payloads
    label: Callable[[Any], str] = str  # the record as people know it
    # A Zoho record of it as people know it (in messages about records not linked here): its name or number.
    remote_name: Callable[[dict], Any] = lambda remote: ""
    extra_create_calls: Callable[[Any], int] = lambda obj: 0  # calls a create makes besides the POST (dry run)
    extra_update_calls: Callable[[Any], int] = lambda obj: 0  # calls an update makes besides the PUT (dry run)
    duplicate_codes: tuple[str, ...] = ()  # Zoho's answers meaning "you have one with this key already"
    # Whether sync may change the Zoho record after it exists: a record linked to one Zoho already had is brought
    # up to date when it may (every entity may today; payments are updated with PUT /payments/{id}, §3.8).
    updatable: bool = True
    # The reverse direction: from a Zoho record to the local fields Zoho owns ({} when it owns none), applied by
    # the pull step (sync/pull.py).
    from_zoho: Callable[[dict, Any], dict] | None = None
    # Called with Zoho's answer to a create (or to an update that answers one, ctx.answer): a payment's answer
    # says the balance of each invoice it paid.
    on_created: Callable[[dict], None] | None = None
    # --- the way back: Zoho's events, its own records, what follows a pull ---------------------------------------
    events: Events | None = None  # None: no webhook event is about this entity
    # A record Zoho created (no local record has its id): (remote, zoho_id, modified) -> PullOutcome, or None when
    # such records are not kept here ("unknown").
    mirror: Callable[[dict, str, datetime], PullOutcome] | None = None
    after_pull: Callable[[Any], None] | None = None  # the record took Zoho's state: what else follows here
    # Other records a pulled one changed: (spec name, Zoho id) to read and pull next (a payment's invoices: their
    # balance; its refunds: their credit notes). Called with the record and the client, for a record that must be
    # looked up (a payment names no refund).
    related: Callable[[dict, Any], Iterable[tuple[str, str]]] = lambda remote, client: ()
    # --- the rest of the entity's facts -----------------------------------------------------------------------
    failure_label: str = "CAST(id AS TEXT)"  # SQL over its table: the record's label in the failed-records view
    web_app_path: str = ""  # the resource in Zoho's web app address (`#/<path>/<id>`); "" when unknown
    api_resources: tuple[str, ...] = ()  # the first segments of the API paths its calls use (API-usage figures)
    link: LinkRule = LinkRule()
    reconcile: Reconcile = field(default_factory=Reconcile)  # what zoho_reconcile compares
    # Its admin's options (list_display, list_filter, search_fields, ...; sync_readonly adds to the sync fields)
    # when it needs no admin class of its own (admin/records.py registers a ZohoSyncedAdmin with them).
    admin: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    # Its zoho_import columns (zoho_sync.importing.ImportEntity); None: not importable.
    importing: Any = field(default=None, hash=False, compare=False)
    aliases: tuple[str, ...] = ()  # other --entity names people use for it (Zoho's: "plans")

    def payload(self, obj, *, today: date) -> dict:
        return self.to_zoho(obj, today=today)

    @property
    def plural(self) -> str:
        """The --entity name: the business's name for these records (customers, service_packages, ...)."""
        return f"{self.name}s"


def squash(value) -> str:
    """A key as a person may have typed it: casefolded, without any whitespace ("ct - 2025-00001 ")."""
    return "".join(str(value or "").split()).casefold()


def excluded_account_types() -> tuple[str, ...]:
    return get_sync_settings().excluded_account_types


def excluded(customer) -> str | None:
    """Why a customer's records are not synced at all (its account type is excluded), or None."""
    if customer.account_type in excluded_account_types():
        return f"Account type {customer.account_type} is excluded from sync (SYNC_EXCLUDED_ACCOUNT_TYPES)."
    return None
