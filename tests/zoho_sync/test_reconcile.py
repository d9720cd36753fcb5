"""Reconciliation and event replay against the sandbox: drift created on either side is reported, with counts and
totals, and repaired; conflicts are reported with both values and left for a person unless asked."""

from __future__ import annotations

import io
import json
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command

from tests.builders import make_customer, make_invoice, make_payment, make_service
from zoho_sync import services
from zoho_sync.models import Customer, CustomerService, DriftReport, Invoice, SyncStatus, ZohoEvent
from zoho_sync.reconcile import reconcile
from zoho_sync.replay import cursor_read, events_replay
from zoho_sync.sync import inbound
from zoho_sync.sync.specs import SPECS
from zoho_sync.zoho import get_zoho_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def synced(zoho_settings, zoho_sandbox):
    zoho_sandbox.configure(per_minute=0, daily=0)
    zoho_settings.SYNC_TRIGGERS_ENABLED = False
    customers = [make_customer() for _ in range(3)]
    invoice = make_invoice(customer=customers[0])
    make_payment(invoice=invoice, amount=Decimal("20.00"))
    report = services.sync_pending(entity="all")
    assert report.failed == 0
    return [Customer.objects.get(pk=c.pk) for c in customers], Invoice.objects.get(pk=invoice.pk)


def test_in_step_reports_nothing(synced):
    report = reconcile(specs=SPECS)
    assert report.drift == []
    assert report.entities["customer"].matched == 3 and report.entities["invoice"].zoho_total == Decimal("50.00")
    assert DriftReport.objects.get().drift == 0


def test_drift_on_either_side_is_reported_and_repaired(synced, zoho_sandbox, capsys):
    customers, invoice = synced
    client = get_zoho_client()
    # Zoho's side: a person edits a customer's email in Zoho (a field we own), and pays the invoice there.
    changed = customers[1]
    client.put(f"/customers/{changed.zoho_id}", json={"email": "changed-in-zoho@example.com"})
    client.post("/payments", json={"customer_id": invoice.customer.zoho_id, "payment_mode": "cash", "amount": 30.0,
                                   "reference_number": "ZOHO-CASH-1",
                                   "invoices": [{"invoice_id": invoice.zoho_id, "amount_applied": 30.0}]})
    # Our side: a customer changed here without a push (triggers off), and one that Zoho lost.
    Customer.objects.filter(pk=customers[2].pk).update(company_name="Renamed Here Ltd")

    code = None
    try:
        call_command("zoho_reconcile", "--json")
    except SystemExit as exit_:
        code = exit_.code
    assert code == 2
    data = json.loads(capsys.readouterr().out)
    kinds = {(d["entity"], d["kind"], d.get("field")) for e in data["entities"].values() for d in e["drift"]}
    assert ("customer", "conflict", "email") in kinds  # changed in Zoho since our push: both values shown
    assert ("customer", "field", "company_name") in kinds  # changed here, not pushed yet
    assert ("invoice", "status", "status") in kinds  # paid in Zoho (its balance was never pulled: not compared)
    assert ("payment", "missing_locally", None) in kinds  # the payment made in Zoho
    conflict = next(d for d in data["entities"]["customer"]["drift"] if d["kind"] == "conflict")
    assert conflict["zoho"] == "changed-in-zoho@example.com" and conflict["local"] == changed.email
    assert data["entities"]["payment"]["zoho_total"] == "50.00" and data["entities"]["payment"]["local_total"] == \
        "20.00"

    report = reconcile(specs=SPECS, repair=True)
    by = {(d.entity, d.kind, d.field): d.repaired for d in report.drift}
    assert by[("customer", "field", "company_name")] == "pushed"
    assert by[("customer", "conflict", "email")].startswith("left for a person")
    assert by[("invoice", "status", "status")] == "pulled: updated"
    invoice.refresh_from_db()
    assert (invoice.status, invoice.balance_due) == ("paid", Decimal("0.00"))
    assert invoice.payments.filter(origin="zoho", reference="ZOHO-CASH-1").exists()
    assert zoho_sandbox.records("customers")[2]["company_name"] == "Renamed Here Ltd"

    after = reconcile(specs=SPECS)
    assert [(d.entity, d.kind, d.field) for d in after.drift] == [("customer", "conflict", "email")]
    reconcile(specs=SPECS, repair=True, conflicts="local")
    assert reconcile(specs=SPECS).drift == []
    assert {c["email"] for c in zoho_sandbox.records("customers")} == {c.email for c in Customer.objects.all()}


def test_a_record_zoho_lost_is_created_again(synced, zoho_sandbox):
    alone = make_customer()
    services.sync_object(entity="customer", pk=alone.pk)
    alone.refresh_from_db()
    old_id = alone.zoho_id
    zoho_sandbox.delete_record("customers", old_id)  # gone from Zoho (a person deleted it there)
    report = reconcile(specs=SPECS[:1], repair=True)
    assert [(d.kind, d.label, d.repaired) for d in report.drift] == [("missing_in_zoho", alone.account_number,
                                                                      "re-created")]
    alone.refresh_from_db()
    assert alone.sync_status == SyncStatus.SYNCED and alone.zoho_id and alone.zoho_id != old_id


def test_reconciliation_costs_one_call_per_200_records(synced, zoho_sandbox):
    before = len(zoho_sandbox.requests())
    report = reconcile(specs=SPECS)
    calls = [r for r in zoho_sandbox.requests()[before:] if r.get("api_path")]
    assert len(calls) == report.calls == len(SPECS)  # one page per entity here
    assert {r["method"] for r in calls} == {"GET"}


def test_event_replay_brings_missing_events_into_the_inbox_once(synced, zoho_sandbox):
    _, invoice = synced
    # Zoho's events list holds only what Zoho did: the events of our own pushes are settled without a read
    # (test_inbox_echoes.py), and Zoho's payment comes a few seconds after our pushes (events are matched by
    # second: the sandbox's clock here stands still unless advanced).
    with zoho_sandbox.store.lock:
        zoho_sandbox.store.tables["events"].clear()
    zoho_sandbox.advance(5)
    client = get_zoho_client()
    client.post("/payments", json={"customer_id": invoice.customer.zoho_id, "payment_mode": "cash", "amount": 30.0,
                                   "reference_number": "ZOHO-CASH-2",
                                   "invoices": [{"invoice_id": invoice.zoho_id, "amount_applied": 30.0}]})
    listed = client.get("/events")["events"]
    assert listed, "the sandbox keeps events"
    first = events_replay()
    assert len(first.added) == len(listed) and first.calls == 1 + len(listed)
    assert ZohoEvent.objects.filter(source="replay").count() == len(listed)
    assert cursor_read() is not None
    again = events_replay()
    assert again.added == [] and again.already == again.listed and again.calls == 1


def test_repairs_enter_through_the_inbox_and_a_void_in_zoho_is_pulled(synced, zoho_sandbox):
    _, invoice = synced
    fresh = make_invoice(customer=invoice.customer)  # one without payments: Zoho voids it
    services.sync_object(entity="invoice", pk=fresh.pk)
    fresh.refresh_from_db()
    zoho_sandbox.void_invoice(fresh.zoho_id)  # voided in Zoho's web app: no event (§7.1)
    report = reconcile(specs=SPECS, repair=True)
    # The invoice's balance is known here from Zoho's answer to its create (applied by the push): voiding it in
    # Zoho changed that too.
    assert [(d.entity, d.kind, d.field, d.zoho, d.repaired) for d in report.drift] == [
        ("invoice", "status", "status", "void", "pulled: updated"),
        ("invoice", "amount", "balance_due", "0.00", "pulled: updated")]
    event = ZohoEvent.objects.get(source="reconcile")
    assert (event.event_type, event.entity, event.zoho_id, event.state) == (
        "reconciled_invoice", "invoice", fresh.zoho_id, "applied")
    fresh.refresh_from_db()
    assert (fresh.status, fresh.sync_status) == ("void", SyncStatus.SYNCED)
    assert services.sync_pending(entity="all").calls == 0  # in step: the void is not sent back
    assert reconcile(specs=SPECS).drift == []


def test_an_expiry_in_zoho_is_mirrored(synced, zoho_sandbox):
    from tests.builders import make_service
    from zoho_sync import inbox

    service = make_service()
    assert services.sync_pending(entity="all").failed == 0
    service.refresh_from_db()
    zoho_sandbox.expire_subscription(service.zoho_id)
    events = get_zoho_client().get("/events", params={"event_type": "subscription_expired"})["events"]
    stored, _ = inbox.event_accept({"event_id": events[0]["event_id"], "event_type": "subscription_expired",
                                    "data": {"subscription": {"subscription_id": service.zoho_id}}},
                                   source="webhook")
    inbox.event_apply(stored.pk)
    service.refresh_from_db()
    assert (service.status, service.sync_status) == ("expired", SyncStatus.SYNCED)


def run_reconcile(*args) -> tuple[int, str]:
    """zoho_reconcile as cron runs it: (exit code, what it printed)."""
    out = io.StringIO()
    try:
        call_command("zoho_reconcile", *args, stdout=out)
    except SystemExit as exit_:
        return exit_.code, out.getvalue()
    except CommandError as error:
        return error.returncode, out.getvalue() + str(error)
    return 0, out.getvalue()


def test_nan_and_huge_totals_from_zoho_are_named_and_the_rest_is_repaired(synced, zoho_sandbox):
    customers, paid = synced
    huge = make_invoice(customer=customers[1])
    voided = make_invoice(customer=customers[2])
    assert services.sync_pending(entity="all").failed == 0
    huge.refresh_from_db()
    voided.refresh_from_db()
    # Zoho's side: one invoice total is NaN, another 1e300 (both served as JSON numbers), and one is voided.
    zoho_sandbox.edit_record("invoices", paid.zoho_id, {"total": float("nan")})
    zoho_sandbox.edit_record("invoices", huge.zoho_id, {"total": 1e300})
    zoho_sandbox.void_invoice(voided.zoho_id)
    # Ours: a customer changed here, not pushed yet.
    Customer.objects.filter(pk=customers[0].pk).update(company_name="Renamed Here Ltd")

    code, out = run_reconcile("--repair")

    assert code == 2
    assert f"bad_value       {paid.invoice_number} total: here '50.00', Zoho 'nan' (is not a finite number)" in out
    assert f"bad_value       {huge.invoice_number} total: here '50.00', Zoho '1e+300' (does not fit" in out
    assert out.count("[left: Zoho's value cannot be kept here; correct it in Zoho]") == 2
    report = DriftReport.objects.get()
    by = {(d["entity"], d["kind"], d.get("field"), d["label"]): d.get("repaired")
          for e in report.report["entities"].values() for d in e["drift"]}
    assert by[("customer", "field", "company_name", customers[0].account_number)] == "pushed"
    assert by[("invoice", "status", "status", voided.invoice_number)] == "pulled: updated"
    # The other entities were repaired; the bad records changed nothing here (no 0.00, no NaN).
    assert zoho_sandbox.records("customers")[0]["company_name"] == "Renamed Here Ltd"
    voided.refresh_from_db()
    assert voided.status == "void"
    for invoice in (paid, huge):
        before = (invoice.total, invoice.status, invoice.balance_due)
        invoice.refresh_from_db()
        assert (invoice.total, invoice.status, invoice.balance_due) == before
    assert report.report["entities"]["invoice"]["zoho_total"] == "50.00"  # the voided one; bad ones not summed
    # Corrected in Zoho: in step again (the void and the push above held).
    zoho_sandbox.edit_record("invoices", paid.zoho_id, {"total": 50.0})
    zoho_sandbox.edit_record("invoices", huge.zoho_id, {"total": 50.0})
    assert reconcile(specs=SPECS).drift == []


def synced_services(n: int) -> list[CustomerService]:
    services_ = [make_service() for _ in range(n)]
    assert services.sync_pending(entity="all").failed == 0
    return [CustomerService.objects.select_related("package").get(pk=s.pk) for s in services_]


def test_a_subscription_whose_quantity_or_plan_changed_in_zoho_is_found(synced, zoho_sandbox):
    quantity, plan, untouched, ours = synced_services(4)
    client = get_zoho_client()
    # In Zoho's web app: one subscription's quantity becomes 3, another moves to a different plan of ours.
    client.put(f"/subscriptions/{quantity.zoho_id}", json={"plan": {"plan_code": quantity.package.plan_code,
                                                                    "quantity": 3}})
    client.put(f"/subscriptions/{plan.zoho_id}", json={"plan": {"plan_code": untouched.package.plan_code}})
    # Here: a quantity changed and not pushed yet (triggers are off).
    CustomerService.objects.filter(pk=ours.pk).update(quantity=2)
    before = len(zoho_sandbox.requests())

    report = reconcile(specs=SPECS)

    found = {(d.label, d.kind, d.field, d.local, d.zoho) for d in report.entities["customer_service"].drift}
    assert found == {
        (quantity.zoho_reference_id, "conflict", "quantity", "1", "3"),
        (plan.zoho_reference_id, "conflict", "plan_code", plan.package.plan_code, untouched.package.plan_code),
        (ours.zoho_reference_id, "field", "quantity", "2", "1"),
    }
    # One listing call per entity, and a read only for the three whose listed plan or amount differ.
    reads = [r["api_path"] for r in zoho_sandbox.requests()[before:] if r.get("api_path", "").count("/") == 2]
    assert sorted(reads) == sorted(f"/subscriptions/{s.zoho_id}" for s in (quantity, plan, ours))
    code, out = run_reconcile("--entity", "subscriptions")
    assert code == 2 and f"conflict        {quantity.zoho_reference_id} quantity: here '1', Zoho '3'" in out

    repaired = reconcile(specs=SPECS, repair=True)  # also mirrors the subscriptions' first invoices Zoho raised
    assert {(d.field, d.kind, d.repaired) for d in repaired.entities["customer_service"].drift} == {
        ("quantity", "conflict", "left for a person (--conflicts local pushes ours)"),
        ("plan_code", "conflict", "left for a person (--conflicts local pushes ours)"),
        ("quantity", "field", "pushed")}
    reconcile(specs=SPECS, repair=True, conflicts="local")
    held = {r["subscription_id"]: r["plan"] for r in zoho_sandbox.records("subscriptions")}
    assert (held[quantity.zoho_id]["quantity"], held[plan.zoho_id]["plan_code"], held[ours.zoho_id]["quantity"]) \
        == (1, plan.package.plan_code, 2)
    assert reconcile(specs=SPECS).drift == []


def test_event_replay_that_cannot_read_an_event_keeps_its_cursor_before_it(synced, zoho_sandbox, zoho_settings):
    zoho_settings.ZOHO_RETRY_MAX_ATTEMPTS = 1  # Zoho's 500 is the answer, not a retry
    _, invoice = synced
    client = get_zoho_client()
    assert run_reconcile("--events")[0] == 0
    start = cursor_read()
    zoho_sandbox.advance(120)
    client.post("/payments", json={"customer_id": invoice.customer.zoho_id, "payment_mode": "cash", "amount": 30.0,
                                   "reference_number": "ZOHO-CASH-3",
                                   "invoices": [{"invoice_id": invoice.zoho_id, "amount_applied": 30.0}]})
    fresh = [e for e in client.get("/events")["events"] if not ZohoEvent.objects.filter(event_id=e["event_id"])]
    assert fresh
    failing = fresh[0]
    zoho_sandbox.fail_next("GET", f"/events/{failing['event_id']}", status=500)

    code, out = run_reconcile("--events")

    assert code == 2
    assert f"Event {failing['event_id']} could not be read: GET /events/{failing['event_id']}, HTTP 500" in out
    assert "the cursor stays before them" in out
    assert not ZohoEvent.objects.filter(event_id=failing["event_id"]).exists()
    assert ZohoEvent.objects.filter(event_id__in=[e["event_id"] for e in fresh[1:]]).count() == len(fresh) - 1
    assert start <= cursor_read() < inbound.zoho_time(failing["event_time"])

    # Zoho answers again: the rerun picks the event up, and the cursor moves past it.
    code, out = run_reconcile("--events")
    assert code == 0 and "1 added" in out
    assert ZohoEvent.objects.filter(event_id=failing["event_id"], source="replay").exists()
    assert cursor_read() >= inbound.zoho_time(failing["event_time"])


def test_event_replay_that_cannot_read_the_list_moves_nothing(synced, zoho_sandbox, zoho_settings):
    zoho_settings.ZOHO_RETRY_MAX_ATTEMPTS = 1
    assert run_reconcile("--events")[0] == 0
    start, stored = cursor_read(), ZohoEvent.objects.count()
    zoho_sandbox.advance(120)
    make_customer()
    services.sync_pending(entity="all")
    invoice = make_invoice(customer=Customer.objects.first())
    services.sync_pending(entity="all")
    invoice.refresh_from_db()
    zoho_sandbox.pay_invoice(invoice.zoho_id)
    zoho_sandbox.fail_next("GET", "/events", status=503, code=1000)

    code, out = run_reconcile("--events", "--json")

    assert code == 1 and "Zoho's events list could not be read: GET /events, HTTP 503" in out
    assert json.loads(out.splitlines()[0])["list_error"].startswith("GET /events, HTTP 503")
    assert (cursor_read(), ZohoEvent.objects.count()) == (start, stored)
    assert run_reconcile("--events")[0] == 0
    assert ZohoEvent.objects.filter(event_type="payment_thankyou", source="replay").exists()
    assert cursor_read() > start


def test_a_zoho_record_the_inbox_refuses_is_named_by_replay_and_repair_and_holds_nothing(synced, zoho_sandbox):
    _, invoice = synced
    assert run_reconcile("--events")[0] == 0
    zoho_sandbox.advance(120)
    client = get_zoho_client()
    paid = client.post("/payments", json={  # a person typed a NUL into the reference in Zoho
        "customer_id": invoice.customer.zoho_id, "payment_mode": "cash", "amount": 30.0,
        "reference_number": "CASH\x00-4", "invoices": [{"invoice_id": invoice.zoho_id, "amount_applied": 30.0}]},
    )["payment"]
    events = [e for e in client.get("/events")["events"] if not ZohoEvent.objects.filter(event_id=e["event_id"])]
    assert events

    code, out = run_reconcile("--events")

    assert code == 2
    assert f"was refused by the inbox: event {events[0]['event_id']}: " in out and "NUL character" in out
    assert not ZohoEvent.objects.filter(event_id__in=[e["event_id"] for e in events]).exists()
    # Reading it again gives the same: it holds no cursor back.
    assert cursor_read() >= max(inbound.zoho_time(e["event_time"]) for e in events)

    report = reconcile(specs=SPECS, repair=True)
    left = {(d.entity, d.kind, d.zoho_id): d.repaired for d in report.drift}
    assert left[("payment", "missing_locally", paid["payment_id"])].startswith(
        "left: refused by the inbox (event reconcile-payment-")
    assert left[("invoice", "status", invoice.zoho_id)] == "pulled: updated"  # the rest is repaired
    assert "CASH\\x00-4" in DriftReport.objects.latest("pk").text  # kept, shown escaped (PostgreSQL takes no NUL)
    invoice.refresh_from_db()
    assert (invoice.status, invoice.balance_due) == ("paid", Decimal("0.00"))
