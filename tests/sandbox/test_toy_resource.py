"""resources/__init__.py's "Adding a resource" steps are true: a toy resource, one new module plus one row added to
`RESOURCES` and nothing else, gets its table, routes, events, seeding, web-app edits and deletes, a Zoho-side
action (method and admin hook, listed in --help's docstring), a reaction to a voided invoice, and survives a
snapshot. It runs in a fresh interpreter whose registry source is the real one with the row spliced in."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

WIDGETS = '''
"""Widgets: a toy resource for the test, made by following resources/__init__.py's steps."""

from typing import Any

from zoho_sync.sandbox import validation as v
from zoho_sync.sandbox.errors import not_allowed
from zoho_sync.sandbox.routes import Call, Reply, Router
from zoho_sync.sandbox.store import Store, public
from zoho_sync.sandbox.zoho_side import Action


def create_widget(store: Store, body: Any, *, record_id: str | None = None, emit: bool = True) -> dict[str, Any]:
    body = v.body_object(body)
    now = store.timestamp()
    rec = {"widget_id": record_id or store.new_id(), "name": v.text(body, "name", required=True),
           "invoice_id": v.text(body, "invoice_id") or "", "status": "new", "created_time": now, "updated_time": now}
    store.put("widgets", rec["widget_id"], rec)
    if emit:
        store.emit("widget_added", "widget", public(rec))
    return rec


def seed_widget(store: Store, body: Any, *, record_id: str | None = None) -> dict[str, Any]:
    return create_widget(store, body, record_id=record_id, emit=False)


def delete_widget(store: Store, rec: dict[str, Any]) -> None:
    if rec["status"] == "polished":
        raise not_allowed("the widget is polished")
    store.remove("widgets", rec["widget_id"])


def orphan(store: Store, invoice: dict[str, Any]) -> None:
    for rec in store.tables["widgets"].values():
        if rec["invoice_id"] == invoice["invoice_id"]:
            rec["status"] = "orphaned"
            store.stamp(rec, "updated_time")


def _create(store: Store, call: Call) -> Reply:
    return 201, {"code": 0, "message": "made", "widget": public(create_widget(store, call.body))}


def _get(store: Store, call: Call) -> Reply:
    return 200, {"code": 0, "message": "success",
                 "widget": public(store.require("widgets", call.params["widget_id"], "Widget"))}


def register(router: Router) -> None:
    router.add("POST", "/widgets", _create, 201)
    router.add("GET", "/widgets/{widget_id}", _get)


def _zoho_polish_widget(store: Store, widget_id: str, shine: int = 1) -> dict[str, Any]:
    """A person polishes a widget in the web app."""
    rec = store.require("widgets", str(widget_id), "Widget")
    rec["status"] = "polished"
    store.stamp(rec, "updated_time")
    return public(rec)


ACTIONS = (Action("polish_widget", "widget", _zoho_polish_widget),)
'''

ROW = ('    Resource("widgets", "widget_id", widgets.seed_widget, "Widget", routes=widgets.register,\n'
       '             delete=widgets.delete_widget, actions=widgets.ACTIONS, on={"invoice_voided": widgets.orphan}),\n')

SCRIPT = '''
import importlib.abc
import importlib.util
import sys
from pathlib import Path

import requests

toy_dir, row = sys.argv[1], sys.argv[2]
init = Path("zoho_sync/sandbox/resources/__init__.py").resolve()
source = init.read_text()
marker = ")\\n# Routes over no resource's table"
assert source.count(marker) == 1 and source.count("    subscriptions,\\n)") == 1
source = source.replace("    subscriptions,\\n)", "    subscriptions,\\n    widgets,\\n)")  # its import
source = source.replace(marker, row + marker)  # its one row


class Registry(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path, target=None):
        if name != "zoho_sync.sandbox.resources":
            return None
        return importlib.util.spec_from_file_location(name, init, loader=self,
                                                      submodule_search_locations=[str(init.parent), toy_dir])

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        exec(compile(source, str(init), "exec"), module.__dict__)


sys.meta_path.insert(0, Registry())

from zoho_sync.sandbox import ZohoSandbox, admin  # noqa: E402

with ZohoSandbox() as zoho:
    assert "widgets" in zoho.store.tables and zoho.state()["counts"]["widgets"] == 0
    api, headers = zoho.base_url, zoho.headers()
    made = requests.post(f"{api}/widgets", json={"name": "cog"}, headers=headers, timeout=5)
    assert made.status_code == 201, made.text
    widget = made.json()["widget"]
    got = requests.get(f"{api}/widgets/{widget['widget_id']}", headers=headers, timeout=5).json()
    assert got["widget"]["name"] == "cog"
    assert requests.get(f"{api}/widgets/1", headers=headers, timeout=5).json()["message"] == "Widget does not exist."
    assert any(e["event_type"] == "widget_added" for e in zoho.records("events"))

    assert zoho.edit_record("widgets", widget["widget_id"], {"name": "sprocket"})["name"] == "sprocket"
    assert zoho.polish_widget(widget["widget_id"], shine=2)["status"] == "polished"
    assert "polish_widget {widget_id, shine?} -> widget" in admin.__doc__ and "polish_widget" in admin.POSTS
    hook = requests.post(f"{zoho.url}/__sandbox__/polish_widget", json={"widget_id": widget["widget_id"]}, timeout=5)
    assert hook.json()["widget"]["status"] == "polished", hook.text
    try:
        zoho.delete_record("widgets", widget["widget_id"])
        raise SystemExit("a polished widget must stay")
    except Exception as exc:
        assert "polished" in str(exc), exc

    customer = zoho.seed("customers", [{"display_name": "Acme", "email": "a@acme.test"}])[0]
    product = zoho.seed("products", [{"name": "Installation"}])[0]
    invoice = zoho.seed("invoices", [{"customer_id": customer["customer_id"], "invoice_items": [
        {"product_id": product["product_id"], "quantity": 1, "price": 10}]}])[0]
    seeded = zoho.seed("widgets", [{"name": "gear", "invoice_id": invoice["invoice_id"]}])[0]
    zoho.void_invoice(invoice["invoice_id"])
    assert zoho.records("widgets")[-1]["status"] == "orphaned"

    snapshot = zoho.store.snapshot()
    zoho.store.clear()
    zoho.store.restore(snapshot)
    assert len(zoho.records("widgets")) == 2
    zoho.delete_record("widgets", seeded["widget_id"])
    assert len(zoho.records("widgets")) == 1
print("ok")
'''


def test_a_new_resource_is_one_module_and_one_row(tmp_path: Path):
    (tmp_path / "widgets.py").write_text(textwrap.dedent(WIDGETS))
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path), ROW], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stdout + done.stderr
