"""zoho_backfill and zoho_retry_failed: the same vocabulary in every line, and exit codes that describe every record
in scope (0 settled, 2 failed/waiting/blocked or stopped by the quota, 1 bad arguments or configuration), whether or
not this run touched them."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import call_command, load_command_class
from django.core.management.base import CommandError
from django.utils import timezone

from tests.builders import make_customer, make_invoice, make_package
from tests.zoho_sync.test_triggers import ROOT, process_env
from zoho_sync import services
from zoho_sync.client import codes
from zoho_sync.models import Customer, Invoice, SyncState, SyncStatus

pytestmark = pytest.mark.django_db


def run(name: str, monkeypatch, **options) -> tuple[int, str]:
    """Run a command as from the command line (where a partial failure is an exit code, not a report)."""
    monkeypatch.setattr(type(load_command_class("zoho_sync", name)), "_called_from_command_line", True,
                        raising=False)
    out = StringIO()
    try:
        call_command(name, stdout=out, stderr=out, **options)
    except CommandError as error:
        return error.returncode, f"{out.getvalue()}\n{error}"
    return 0, out.getvalue()


def test_everything_synced_exits_0(zoho, monkeypatch):
    make_customer()
    code, text = run("zoho_backfill", monkeypatch)
    assert code == 0 and "Nothing in scope is failed, waiting or blocked" in text
    code, text = run("zoho_backfill", monkeypatch)
    assert code == 0 and "0 API calls" in text, "a rerun with nothing due says so and exits 0"


def test_a_record_that_needs_a_person_exits_2_on_every_run_until_fixed(zoho, monkeypatch):
    bad = make_customer(email="ava.example.com")
    invoice = make_invoice(customer=bad)
    code, text = run("zoho_backfill", monkeypatch)
    assert code == 2 and "1 failed, needs a person, 1 blocked by a dependency that needs a person" in text
    code, text = run("zoho_backfill", monkeypatch)  # nothing is due: this run touches neither record
    assert code == 2 and "0 records in" in text and "1 failed, needs a person" in text, \
        "untouched failures in scope still make the run unsettled"
    code, text = run("zoho_retry_failed", monkeypatch)
    assert code == 2 and "--include-validation" in text
    assert Invoice.objects.get(pk=invoice.pk).sync_status == SyncStatus.BLOCKED, "not retried before its customer"
    Customer.objects.filter(pk=bad.pk).update(email="fixed@example.com")  # fixed by a bulk update: no save()
    code, text = run("zoho_retry_failed", monkeypatch, include_validation=True)
    assert code == 0, text
    assert Invoice.objects.get(pk=invoice.pk).sync_status == SyncStatus.SYNCED, "it followed its customer"


def test_a_failure_retrying_later_and_a_waiting_dependent_exit_2(zoho, monkeypatch):
    customer = make_customer()
    make_invoice(customer=customer)
    zoho.fail_next("POST", "/customers", status=500, code=codes.INTERNAL_ERROR)
    code, text = run("zoho_backfill", monkeypatch)
    assert code == 2 and "1 failed, retrying" in text and "1 waiting for a dependency" in text
    assert Customer.objects.get(pk=customer.pk).sync_state == SyncState.RETRYING
    code, text = run("zoho_retry_failed", monkeypatch)
    assert code == 0, text


def test_the_entity_scope_limits_what_counts(zoho, monkeypatch):
    make_customer(email="broken")
    code, _ = run("zoho_backfill", monkeypatch, entity="plans")
    assert code == 0, "the failed customer is not in the plans' scope"
    code, _ = run("zoho_backfill", monkeypatch, entity="customers")
    assert code == 2


@pytest.mark.parametrize(("given", "other"), [("service_packages", "customers"), ("plans", "customer"),
                                               ("Service-Packages", "CUSTOMERS")])
def test_the_entity_names_and_their_old_spellings_mean_the_same_scope_on_the_command_line(zoho, monkeypatch, given,
                                                                                          other):
    """--entity as typed in a shell (parsed, not passed as a keyword): the one name and each old spelling."""
    monkeypatch.setattr(type(load_command_class("zoho_sync", "zoho_backfill")), "_called_from_command_line", True,
                        raising=False)
    make_customer(email="broken")
    package = make_package()

    def backfill(entity: str) -> int:
        try:
            call_command("zoho_backfill", "--entity", entity, stdout=StringIO(), stderr=StringIO())
        except CommandError as error:
            return error.returncode
        return 0

    assert backfill(given) == 0, "the failed customer is not in the packages' scope"
    assert [p["plan_code"] for p in zoho.records("plans")] == [package.plan_code]
    assert backfill(other) == 2, "the failed customer is in the customers' scope"


def test_the_daily_quota_stop_exits_2_and_installs_the_continuation(zoho, zoho_settings, monkeypatch):
    from django_q.models import Schedule

    zoho_settings.ZOHO_DAILY_LIMIT, zoho_settings.ZOHO_DAILY_RESERVE = 4, 1
    for _ in range(5):
        make_customer()
    code, text = run("zoho_backfill", monkeypatch)
    assert code == 2 and "The daily quota stopped the run." in text
    schedule = Schedule.objects.get(name=services.CONTINUE_SCHEDULE)
    assert f"Installed the django-q2 schedule '{services.CONTINUE_SCHEDULE}'" in text
    assert schedule.next_run.astimezone(UTC).time().hour == 0 and schedule.func == "zoho_sync.tasks.backfill"
    run("zoho_backfill", monkeypatch)
    assert Schedule.objects.filter(name=services.CONTINUE_SCHEDULE).count() == 1, "installed idempotently"


def test_zohos_quota_answer_without_retry_after_resumes_after_the_next_utc_midnight(zoho):
    make_customer()
    zoho.fail_next("POST", "/customers", status=429, code=codes.RATE_LIMIT_DAILY, times=5)
    report = services.sync_pending()
    assert report.stopped and report.resume_at is not None
    now = datetime.now(UTC)
    midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    assert abs((report.resume_at - midnight).total_seconds()) < 5, report.resume_at
    assert timezone.localtime(report.resume_at).strftime("%Y-%m-%d %H:%M") in report.stopped


def test_bad_arguments_and_configuration_exit_1(zoho_settings, monkeypatch):
    code, text = run("zoho_backfill", monkeypatch, batch_size=0)
    assert code == 1 and "--batch-size" in text
    zoho_settings.ZOHO_CLIENT_ID = ""
    code, text = run("zoho_backfill", monkeypatch)
    assert code == 1 and "ZOHO_CLIENT_ID" in text
    code, text = run("zoho_retry_failed", monkeypatch)
    assert code == 1 and "ZOHO_CLIENT_ID" in text


def test_help_documents_the_exit_codes():
    for name in ("zoho_backfill", "zoho_retry_failed"):
        text = load_command_class("zoho_sync", name).help
        assert "Exit 0" in text and "2:" in text and "1: bad arguments or configuration" in text


def test_the_dry_run_counts_what_already_failed_by_kind_and_what_waits(zoho):
    bad = make_customer(email="broken")
    make_invoice(customer=bad)
    services.sync_pending()
    out = StringIO()
    call_command("zoho_backfill", dry_run=True, stdout=out)
    text = out.getvalue()
    assert "customer failed by kind: invalid_data 1" in text
    lines = {line.split()[0]: line.split()[1:] for line in text.splitlines() if line.startswith(("customer ",
                                                                                                 "invoice "))}
    states = list(SyncState.values)
    assert int(lines["customer"][states.index(SyncState.NEEDS_PERSON)]) == 1
    assert int(lines["invoice"][states.index(SyncState.BLOCKED)]) == 1


@pytest.mark.django_db(transaction=True)
def test_the_real_exit_status_from_a_shell(live_sandbox):
    """What cron sees: the process's own exit status."""
    make_customer(email="broken")
    env = process_env(live_sandbox, SYNC_RETRY_WINDOW_SECONDS="0", SYNC_TRIGGERS_ENABLED="false")
    done = subprocess.run([sys.executable, "manage.py", "zoho_backfill"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "1 failed, needs a person" in done.stderr
