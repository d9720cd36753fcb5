"""The sandbox's resources are one module plus one `Resource` row each (issue 20): the generic modules read the
rows (tables, routes, seeding, web-app deletes, Zoho-side actions, reactions) and name no resource."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import requests

from zoho_sync.sandbox import ZohoSandbox, actions, admin, store
from zoho_sync.sandbox.resources import ACTIONS, DELETERS, REACTIONS, RESOURCES, TABLES, invoices
from zoho_sync.sandbox.zoho_side import Action

SANDBOX = Path(actions.__file__).parent
# The modules every resource goes through; none may name a resource's table or import a resource's module.
GENERIC = ("store.py", "actions.py", "admin.py", "sandbox.py", "app.py", "webhooks.py", "validation.py",
           "routes.py", "zoho_side.py", "resources/edits.py")


def _tree(relative: str) -> ast.Module:
    return ast.parse((SANDBOX / relative).read_text())


def test_generic_modules_name_no_resource():
    modules = {p.stem for p in (SANDBOX / "resources").glob("*.py")} - {"__init__", "edits"}
    for relative in GENERIC:
        tree = _tree(relative)
        literals = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
        assert not literals & set(TABLES), f"{relative} names a resource's table"
        imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names}
        imported |= {(n.module or "").rsplit(".", 1)[-1] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert not imported & modules, f"{relative} imports a resource's module"


def test_the_store_tables_are_the_rows_and_the_event_log(zoho_sandbox: ZohoSandbox):
    assert tuple(r.name for r in RESOURCES) == TABLES
    assert tuple(zoho_sandbox.store.tables) == (*TABLES, store.EVENTS)
    assert (*TABLES, "events") == store.RESOURCES  # the old name still reads the list
    assert set(zoho_sandbox.state()["counts"]) == {*TABLES, "events"}


def test_every_registered_action_is_a_method_and_an_admin_hook(zoho_sandbox: ZohoSandbox):
    assert len(ACTIONS) == sum(len(r.actions) for r in RESOURCES), "two resources register one action name"
    assert not set(ACTIONS) & set(actions.GENERIC)
    assert not set(ACTIONS) & set(vars(ZohoSandbox)) and not any(hasattr(ZohoSandbox, name) for name in ACTIONS)
    for name, action in ACTIONS.items():
        method = getattr(zoho_sandbox, name)
        assert method.__name__ == name and method.__doc__ == action.function.__doc__
        declared = list(inspect.signature(action.function).parameters.values())[1:]
        assert list(inspect.signature(method).parameters.values()) == declared
        assert admin.ACTIONS[name] == action.answer and name in admin.POSTS
        assert action.usage() in admin.__doc__
        assert name in dir(zoho_sandbox)
    assert all(admin.ACTIONS[name] == key for name, key in actions.GENERIC.items())


def test_an_unknown_attribute_is_still_an_attribute_error(zoho_sandbox: ZohoSandbox):
    try:
        zoho_sandbox.pay_invoices  # noqa: B018 - the lookup is the test
    except AttributeError as exc:
        assert "pay_invoices" in str(exc)
    else:
        raise AssertionError("a misspelt action must not be found")


def test_an_action_runs_under_the_store_lock_and_answers_over_http(zoho_sandbox: ZohoSandbox):
    seen = []

    def probe(store_, value: int, flag: bool = False) -> dict:
        """A probe."""
        seen.append(store_.lock._is_owned())
        return {"value": value, "flag": flag}

    action = Action("probe", "probe", probe)
    assert action.usage() == "probe {value, flag?} -> probe"
    assert action.bind(zoho_sandbox.store)(3, flag=True) == {"value": 3, "flag": True} and seen == [True]
    answer = requests.post(f"{zoho_sandbox.url}/__sandbox__/void_invoice", json={"invoice_id": "1"}, timeout=5)
    assert answer.status_code == 404 and answer.json()["error"] == "Invoice does not exist."


def test_deletes_and_reactions_come_from_the_rows():
    assert set(DELETERS) == {r.name for r in RESOURCES if r.delete}
    voided = tuple(r.on["invoice_voided"] for r in RESOURCES if "invoice_voided" in r.on)
    assert voided and {"invoice_voided": voided} == REACTIONS
    # Voiding an invoice is the invoices' rule; what the payments and credit notes let go is theirs.
    imported = {a.name for n in ast.walk(_tree("resources/invoices.py")) if isinstance(n, ast.ImportFrom)
                for a in n.names}
    assert not imported & {"credit_notes", "payments", "refunds", "detach_invoice"}
    assert "announce" in inspect.getsource(invoices.void_invoice)
