"""Reconciliation and event replay against the sandbox: drift created on either side is reported, with counts and
totals, and repaired; conflicts are reported with both values and left for a person unless asked."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from django.core.management import call_command

from tests.builders import make_customer, make_invoice, make_payment
from zoho_sync import services
from zoho_sync.models import Customer, DriftReport, Invoice, SyncStatus, ZohoEvent
from zoho_sync.reconcile import reconcile
from zoho_sync.replay import cursor_read, events_replay
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
    assert len(calls) == report.calls == 5  # one page per entity here
    assert {r["method"] for r in calls} == {"GET"}


def test_event_replay_brings_missing_events_into_the_inbox_once(synced, zoho_sandbox):
    _, invoice = synced
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
    assert [(d.entity, d.kind, d.field, d.zoho, d.repaired) for d in report.drift] == [
        ("invoice", "status", "status", "void", "pulled: updated")]
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
