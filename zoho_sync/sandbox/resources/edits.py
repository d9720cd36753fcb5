"""What a person does in Zoho's web app, for drift tests: change fields of a record, or delete one. No events
(customers have no event types, §12.13; drift is what reconciliation has to find), but every edit stamps the
record's modified time. Deleting follows Zoho's refusals: a customer with transactions, a product with plans,
a plan with subscriptions and an invoice with payments stay; each resource's module says what its records
refuse and undo (its Resource row's `delete`), so nothing here names a resource.
"""

from __future__ import annotations

import copy
from typing import Any

from zoho_sync.sandbox.resources import DELETERS, ID_KEYS, LABELS, MODIFIED
from zoho_sync.sandbox.store import Store


def _record(store: Store, resource: str, record_id: str) -> dict[str, Any]:
    if resource not in MODIFIED:
        raise ValueError(f"unknown resource {resource!r}; use one of {', '.join(MODIFIED)}")
    return store.require(resource, str(record_id), LABELS[resource])


def edit_record(store: Store, resource: str, record_id: str, fields: dict[str, Any]) -> dict[str, Any]:
    """Set `fields` (named as in the record's detail) and stamp its modified time; ids, timestamps, internal
    keys and names the record does not have are refused (ValueError). Values are stored as given and served raw,
    so a test can show the app what it does with odd numbers Zoho might send (NaN and Infinity go out as JSON's
    NaN/Infinity tokens, 1e300 as a number); the sandbox's own bookkeeping is not recomputed from them."""
    rec = _record(store, resource, record_id)
    if not isinstance(fields, dict) or not fields:
        raise ValueError("fields must be a non-empty object")
    fixed = {ID_KEYS[resource], MODIFIED[resource], "created_time"}
    for name in fields:
        if name.startswith("_") or name not in rec or name in fixed:
            raise ValueError(f"cannot edit {name!r} of a {LABELS[resource].lower()}")
    rec.update(copy.deepcopy(fields))
    store.stamp(rec, MODIFIED[resource])
    return rec


def delete_record(store: Store, resource: str, record_id: str) -> dict[str, Any]:
    """Remove a record as the resource's own delete function does (its Resource row's `delete`: refusing as Zoho
    would, or undoing what the record moved); a resource without one has its record just removed."""
    rec = _record(store, resource, record_id)
    if resource in DELETERS:
        DELETERS[resource](store, rec)
    else:
        store.remove(resource, rec[ID_KEYS[resource]])
    return rec
