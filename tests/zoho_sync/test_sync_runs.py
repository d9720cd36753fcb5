"""Sync runs are written down: started, beating while they run, and how they ended, with the same figures as the
command's summary; a run whose process died shows as dead."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.builders import make_customer, make_invoice
from tests.zoho_sync.test_commands import run as run_command
from zoho_sync import selectors, services
from zoho_sync.client import codes
from zoho_sync.models import Customer, Invoice, SyncLog, SyncRun
from zoho_sync.models.runs import DEAD_AFTER
from zoho_sync.sync_runs import sync_run_details, sync_run_heartbeat, sync_run_start

pytestmark = pytest.mark.django_db


def test_a_backfill_is_recorded_with_the_summarys_figures(zoho, monkeypatch):
    make_customer()
    make_customer(email="broken")
    code, output = run_command("zoho_backfill", monkeypatch)
    run = SyncRun.objects.get()
    assert run.run_id in output, "the command prints the run's id"
    assert (run.kind, run.status, run.exit_code, code) == ("backfill", "unsettled", 2, 2)
    assert run.counts["customer"] == {"created": 1, "needs_person": 1} and run.records == 2
    assert run.unsettled == {"needs_person": 1}
    assert run.api_calls == len([r for r in zoho.requests() if "/oauth/" not in r["path"]])
    assert run.finished_at and not run.is_dead and run.entities.startswith("customer,")
    assert set(SyncLog.objects.values_list("run_id", flat=True)) == {run.run_id}


def test_skips_are_explained_by_reason_in_the_summary_and_on_the_run(zoho, monkeypatch):
    customer = make_customer()
    make_customer(email="broken")
    for _ in range(2):
        make_invoice(customer=customer, status=Invoice.Status.DRAFT)
    make_invoice(customer=make_customer(account_type=Customer.AccountType.INTERNAL_TEST))
    code, output = run_command("zoho_backfill", monkeypatch)
    assert code == 2
    # The summary says why, under each entity's row, the most frequent reason first.
    assert re.search(r"\ninvoice .+\n {17}skipped 2: Draft invoices are pushed once issued\.\n {17}skipped 1: "
                     r"Account type internal_test is excluded from sync", output), output
    assert re.search(r"\ncustomer .+\n {17}failures of kind .+: 1\n {17}skipped 1: Account type internal_test", output)

    run = SyncRun.objects.get()
    details = dict(sync_run_details(run))
    excluded = "Account type internal_test is excluded from sync (SYNC_EXCLUDED_ACCOUNT_TYPES)"
    assert details["Customer"] == f"1 created in Zoho, 1 failed and need a person, 1 skipped (1: {excluded}).", details
    assert details["Invoice"] == f"3 skipped (2: Draft invoices are pushed once issued; 1: {excluded}).", details
    assert details["Payment"] == "nothing."
    assert details["Left failed, waiting or blocked"] == ("1 failed and need a person (records of the run's scope "
                                                          "when it ended).")
    assert details["Work"].startswith("6 records examined in ") and f"; {run.api_calls} API calls." in details["Work"]
    assert details["How it ended"] == "Finished, records left failed or waiting. Exit code 2."
    assert selectors.sync_skip_reasons() == {
        "customer": {f"{excluded}.": 1},
        "invoice": {"Draft invoices are pushed once issued.": 2, f"{excluded}.": 1}}


def test_429s_and_budget_waits_are_counted_on_the_run(zoho):
    make_customer()
    zoho.fail_next("POST", "/customers", status=429, code=codes.TOO_MANY_CONCURRENT)
    report = services.sync_pending()
    run = SyncRun.objects.get(run_id=report.run_id)
    assert (run.status, run.exit_code, run.rate_limited) == ("settled", 0, 1)


def test_a_retry_and_a_trigger_are_runs_of_their_kind(zoho):
    customer = make_customer()
    invoice = make_invoice(customer=customer)
    outcome = services.sync_trigger(entity="invoice", pk=invoice.pk)
    services.sync_retry_failed()
    kinds = dict(SyncRun.objects.values_list("kind", "status"))
    assert kinds == {"retry": "settled", "trigger": "settled"} and outcome.state == "synced"
    trigger = SyncRun.objects.get(kind="trigger")
    assert trigger.counts == {"invoice": {"created": 1}} and trigger.api_calls >= 2, "its customer went first"


def test_a_run_that_raised_is_recorded_as_crashed(zoho, monkeypatch):
    make_customer()
    monkeypatch.setattr(SyncLog, "save", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("disk full")))
    with pytest.raises(RuntimeError):
        services.sync_pending()
    run = SyncRun.objects.get()
    assert (run.status, run.exit_code, run.error) == ("crashed", None, "RuntimeError: disk full")


@pytest.mark.django_db(transaction=True)
def test_a_running_run_beats_and_a_silent_one_shows_as_dead():
    run = sync_run_start(run_id="a" * 32, kind=SyncRun.Kind.BACKFILL, entities=["customer"])
    old = timezone.now() - DEAD_AFTER - timedelta(seconds=1)
    SyncRun.objects.filter(pk=run.pk).update(heartbeat_at=old)
    assert SyncRun.objects.get(pk=run.pk).is_dead
    with sync_run_heartbeat(run, every=0.05):
        deadline = timezone.now() + timedelta(seconds=5)
        while SyncRun.objects.get(pk=run.pk).heartbeat_at == old:
            assert timezone.now() < deadline, "no heartbeat"
    fresh = SyncRun.objects.get(pk=run.pk)
    assert not fresh.is_dead and fresh.state_label == "Running"
    SyncRun.objects.filter(pk=run.pk).update(heartbeat_at=old)
    assert "dead" in str(SyncRun.objects.get(pk=run.pk))
