"""The registry of entities: one module each in this package (customers, plans, subscriptions, invoices,
payments, credit_notes), each holding its spec (SPEC) and every fact particular to it. SPECS is the one list,
in the specs' `order` (dependency order: an entity comes after those it depends on, checked here).

A module of this package with a SPEC is an entity: nothing else lists them. Commands take their --entity
choices from SPECS, the engine its loop, the inbox its events, the admin its pages and counts. Adding one:
docs/adding-an-entity.md.
"""

from __future__ import annotations

import importlib
import pkgutil

from django.core.exceptions import ImproperlyConfigured

from zoho_sync.entities.base import EntitySpec, Events, LinkRule, PullOutcome

_NOT_ENTITIES = {"base", "reconciling"}


def _discover() -> tuple[EntitySpec, ...]:
    """Every module of this package with a SPEC, in the specs' order; a dependency named before it is defined
    (or not at all) is refused at import, with the names."""
    found = []
    for module in pkgutil.iter_modules(__path__):
        if module.name not in _NOT_ENTITIES and not module.name.startswith("_"):
            spec = getattr(importlib.import_module(f"{__name__}.{module.name}"), "SPEC", None)
            if isinstance(spec, EntitySpec):
                found.append(spec)
    found.sort(key=lambda spec: (spec.order, spec.name))
    seen: set[str] = set()
    for spec in found:
        if missing := [dependency for _, dependency in spec.depends_on if dependency not in seen]:
            raise ImproperlyConfigured(f"Entity {spec.name} (order {spec.order}) depends on {', '.join(missing)}, "
                                       "which must come before it: give it a higher order.")
        seen.add(spec.name)
    return tuple(found)


SPECS: tuple[EntitySpec, ...] = _discover()
BY_NAME = {spec.name: spec for spec in SPECS}
# The five entities older code names directly.
CUSTOMER, SERVICE_PACKAGE, CUSTOMER_SERVICE, INVOICE, PAYMENT = (
    BY_NAME[name] for name in ("customer", "service_package", "customer_service", "invoice", "payment"))
# The --entity names of every command: the business's names for its records, as the admin and zoho_import name
# them (the spec's name in the plural), and the spec each means. Zoho's names for two of them (plans,
# subscriptions), which the push commands used before, are accepted as aliases; so is each spec's own name.
ENTITY_CHOICES = {spec.plural: spec for spec in SPECS}
ENTITY_ALIASES = {**{alias: spec.plural for spec in SPECS for alias in spec.aliases},
                  **{spec.name: spec.plural for spec in SPECS}}

__all__ = ["BY_NAME", "CUSTOMER", "CUSTOMER_SERVICE", "ENTITY_ALIASES", "ENTITY_CHOICES", "INVOICE",
           "PAYMENT",
           "SERVICE_PACKAGE", "SPECS", "EntitySpec", "Events", "LinkRule", "PullOutcome", "by_zoho_entity",
           "entity_argument", "entity_name", "failure_view_sql", "for_api_resource", "for_event", "for_model",
           "specs_for"]


def entity_name(value: str) -> str:
    """The one name of the entity an --entity value names (an alias, any case), or the value unchanged when it
    names none, for argparse's choices to refuse with the list of names."""
    key = value.strip().casefold().replace("-", "_").replace(" ", "_")
    return key if key in ENTITY_CHOICES or key == "all" else ENTITY_ALIASES.get(key, value)


def entity_argument(*, with_all: bool = True, required: bool = False, what: str = "") -> dict:
    """The keyword arguments of every command's --entity option: choices, aliases and help from SPECS alone.
    `parser.add_argument("--entity", **entities.entity_argument())`."""
    names = [*ENTITY_CHOICES, *(["all"] if with_all else [])]
    old = ", ".join(f"{alias} for {name}" for alias, name in ENTITY_ALIASES.items() if alias.endswith("s"))
    default = "" if required or not with_all else " (default: all)"
    text = f"{what or 'The records to work on'}: {', '.join(names)}{default}. Also accepted: {old}."
    kwargs = {"type": entity_name, "choices": names, "metavar": "ENTITY", "help": text}
    return {**kwargs, "required": True} if required else {**kwargs, "default": "all" if with_all else None}


def for_model(model: type) -> EntitySpec | None:
    return next((spec for spec in SPECS if spec.model is model), None)


def specs_for(entity: str) -> tuple[EntitySpec, ...]:
    """The specs an --entity value names ('all' for every one), in dependency order."""
    if entity == "all":
        return SPECS
    return (ENTITY_CHOICES[entity_name(entity)],)


def by_zoho_entity(zoho_entity: str) -> EntitySpec | None:
    """The spec of a Zoho resource name ("subscription"), or None."""
    return next((spec for spec in SPECS if spec.zoho_entity == zoho_entity), None)


def for_event(event_type: str) -> EntitySpec | None:
    """The spec a Zoho webhook event type is about, or None (card events: nothing this app mirrors)."""
    return next((spec for spec in SPECS if spec.events is not None and spec.events.covers(event_type)), None)


def for_api_resource(resource: str) -> EntitySpec | None:
    """The spec whose calls use an API path starting with `resource` ("products": service packages), or None."""
    return next((spec for spec in SPECS if resource in spec.api_resources), None)


def failure_view_sql() -> str:
    """The SQL of the failed-records view (models.SyncFailure): one SELECT per entity, in SPECS order, from the
    specs' tables and failure labels alone (constants: no input reaches it). A migration holds a copy; the test of
    the view compares the latest copy with this."""
    from zoho_sync.models.base import FAILURE_STATUSES

    statuses = ", ".join(f"'{status}'" for status in FAILURE_STATUSES)
    selects = [
        f"SELECT '{spec.name}:' || id AS id, '{spec.name}' AS entity, {position} AS entity_order, "  # noqa: S608
        f"id AS record_id, {spec.failure_label} AS label, zoho_id, sync_status, next_retry_at, last_sync_error, "
        f"last_error_kind, sync_attempts, failing_since, updated_at FROM {spec.model._meta.db_table} "
        f"WHERE sync_status IN ({statuses})"
        for position, spec in enumerate(SPECS)
    ]
    return "CREATE VIEW zoho_sync_syncfailure AS\n" + "\nUNION ALL\n".join(selects)
