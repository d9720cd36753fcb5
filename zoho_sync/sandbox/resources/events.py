"""The Events API (§3.10, §12.12) and `GET /organizations` (§12.7, absent from Zoho's documents).

Events older than the retention window (180 days by default) are gone, from the list and by id alike.
"""

from __future__ import annotations

from typing import Any

from zoho_sync.sandbox import validation as v
from zoho_sync.sandbox.routes import Call, Reply, Router
from zoho_sync.sandbox.store import Store, public


def _list(store: Store, call: Call) -> Reply:
    wanted = call.query.get("event_type")
    rows = [r for r in store.all("events") if not wanted or r["event_type"] == wanted]
    rows.reverse()  # newest first, like an activity feed
    page, context = v.paginate(rows, call.query, store.config.max_per_page)
    items = [{"event_id": r["event_id"], "event_type": r["event_type"], "event_time": r["event_time"]} for r in page]
    return 200, {"code": 0, "message": "success", "events": items, "page_context": context}


def _get(store: Store, call: Call) -> Reply:
    store.prune_events()
    rec = store.require("events", call.params["event_id"], "Event")
    return 200, {"code": 0, "message": "success", "event": public(rec)}


def organization(store: Store) -> dict[str, Any]:
    config = store.config
    return {"organization_id": config.organization_id, "name": config.organization_name,
            "currency_code": config.currency_code, "currency_symbol": config.currency_symbol,
            "time_zone": "Etc/UTC", "is_default_org": True}


def _organizations(store: Store, call: Call) -> Reply:
    return 200, {"code": 0, "message": "success", "organizations": [organization(store)]}


def register(router: Router) -> None:
    router.add("GET", "/events", _list)
    router.add("GET", "/events/{event_id}", _get)
    router.add("GET", "/organizations", _organizations)
