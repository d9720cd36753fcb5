"""Every check's healthy, degraded and unhealthy case; the overall status; /health/; the command's outputs and exit
codes."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone
from django_q.models import Failure

from monitoring import checks
from monitoring.checks import DEGRADED, FAILED, HEALTHY, OK, UNHEALTHY, WARNING, health_run
from tests.builders import make_customer, make_service
from zoho_sync.models import ApiUsage, Customer, CustomerService, SharedState, SyncLog, SyncRun, SyncStatus

pytestmark = pytest.mark.django_db


def result(check: type[checks.Check]):
    return check().run()


def log(status: str, *, entity: str = "customer", duration_ms: int = 200, n: int = 1) -> None:
    SyncLog.objects.bulk_create([SyncLog(entity=entity, object_pk=str(i), action="create", status=status,
                                         duration_ms=duration_ms) for i in range(n)])


def test_all_is_healthy_on_a_quiet_database(healthy):
    report = health_run()
    assert report.status == HEALTHY, report.as_text(detailed=True)
    assert {r.status for r in report.results} == {OK}
    categories = {r.category for r in report.results}
    assert categories == {"Database sync status", "Recent sync activity", "Zoho API connectivity", "Data integrity",
                          "Queue", "API budget", "Inbound from Zoho"}


def test_sync_status_warns_about_records_that_need_a_person(healthy):
    make_customer()
    assert result(checks.SyncStatusCheck).status == OK
    Customer.objects.update(sync_status=SyncStatus.FAILED, next_retry_at=None, last_sync_error="bad email")
    outcome = result(checks.SyncStatusCheck)
    assert outcome.status == WARNING and "1 records need a person" in outcome.summary
    assert "customer: needs_person 1" in outcome.details
    assert health_run().status == DEGRADED


def test_recent_activity_against_the_success_rate_and_time_targets(healthy, settings):
    assert result(checks.RecentActivityCheck).summary == "no sync attempts in the last 24 hours"
    log("success", n=98)
    log("failed", n=2)
    assert result(checks.RecentActivityCheck).status == OK, "98% meets the 98% target"
    log("failed")
    low = result(checks.RecentActivityCheck)
    assert low.status == WARNING and "customer 97.0%" in low.summary
    log("success", entity="invoice", duration_ms=6000, n=3)
    slow = result(checks.RecentActivityCheck)
    assert "average sync time above 5 s: invoice 6.0 s" in slow.summary
    settings.MONITORING_SUCCESS_RATE_TARGET = 0.9
    settings.MONITORING_SYNC_SECONDS_TARGET = 10
    assert result(checks.RecentActivityCheck).status == OK, "the targets are settings"
    log("failed", entity="payment", n=6)
    log("success", entity="payment", n=4)
    broken = result(checks.RecentActivityCheck)
    assert broken.status == FAILED and "most pushes fail" in broken.summary and "payment 40.0%" in broken.summary
    assert health_run(cheap_only=True).status == UNHEALTHY
    SyncLog.objects.update(created_at=timezone.now() - timedelta(hours=25))
    assert result(checks.RecentActivityCheck).summary == "no sync attempts in the last 24 hours"


def test_zoho_unreachable_is_unhealthy_and_the_command_exits_1(healthy):
    assert result(checks.ZohoConnectivityCheck).status == OK
    healthy.revoke_refresh_token()
    from zoho_sync.zoho import forget_clients

    forget_clients()
    SharedState.objects.filter(key__startswith="token").delete()
    outcome = result(checks.ZohoConnectivityCheck)
    assert outcome.status == FAILED and outcome.summary.startswith("access token:")
    assert health_run().status == UNHEALTHY
    out = StringIO()
    with pytest.raises(CommandError) as exit_code:
        call_command("zoho_health_check", stdout=out)
    assert exit_code.value.returncode == 1 and "Zoho sync health: UNHEALTHY" in out.getvalue()


def test_records_unsynced_for_too_long(healthy):
    make_customer()
    assert result(checks.UnsyncedTooLongCheck).status == OK, "a fresh change is not late"
    Customer.objects.update(updated_at=timezone.now() - timedelta(minutes=61))
    outcome = result(checks.UnsyncedTooLongCheck)
    assert outcome.status == WARNING and outcome.details == ("customer: 1",)


def test_an_orphaned_subscription_is_unhealthy(healthy):
    service = make_service()
    assert result(checks.OrphanedSubscriptionsCheck).status == OK
    CustomerService.objects.filter(pk=service.pk).update(zoho_id="903000000000001")
    outcome = result(checks.OrphanedSubscriptionsCheck)
    assert outcome.status == FAILED and outcome.critical
    assert health_run(cheap_only=True).status == UNHEALTHY


def test_failures_older_than_a_week(healthy):
    make_customer()
    Customer.objects.update(sync_status=SyncStatus.FAILED, failing_since=timezone.now() - timedelta(days=6),
                            updated_at=timezone.now() - timedelta(days=400))
    assert result(checks.OldFailuresCheck).status == OK, "how long it has failed counts, not its age"
    Customer.objects.update(failing_since=timezone.now() - timedelta(days=8))
    assert result(checks.OldFailuresCheck).status == WARNING


def test_a_dead_run_degrades(healthy):
    SyncRun.objects.create(run_id="c" * 32, kind="backfill", entities="customer", host="app-1", pid=4242)
    assert result(checks.DeadRunsCheck).status == OK, "a run that beats is alive"
    SyncRun.objects.update(heartbeat_at=timezone.now() - timedelta(minutes=10))
    outcome = result(checks.DeadRunsCheck)
    assert outcome.status == FAILED and not outcome.critical and "app-1 pid 4242" in outcome.details[0]
    assert health_run(cheap_only=True).status == DEGRADED


def test_a_link_run_is_a_run_like_the_others(healthy):
    """--link-only runs are SyncRuns of kind "link": alive while they beat, dead when they stop, 429s counted."""
    SyncRun.objects.create(run_id="l" * 32, kind=SyncRun.Kind.LINK, entities="customer", host="app-2", pid=7,
                           rate_limited=2)
    assert result(checks.DeadRunsCheck).status == OK
    assert result(checks.ApiBudgetCheck).status == WARNING and "429 answers today: 2" in result(
        checks.ApiBudgetCheck).details
    SyncRun.objects.update(heartbeat_at=timezone.now() - timedelta(minutes=10))
    outcome = result(checks.DeadRunsCheck)
    assert outcome.status == FAILED and outcome.details[0].startswith("link llllllllllll on app-2 pid 7")


def test_queue_without_a_cluster_and_with_failed_tasks(healthy):
    assert result(checks.QueueCheck).status == OK
    SharedState.objects.filter(key="monitoring:cluster-heartbeat").update(
        data=(timezone.now() - timedelta(minutes=6)).isoformat())
    down = result(checks.QueueCheck)
    assert down.status == FAILED and "manage.py qcluster" in down.summary and not down.critical
    SharedState.objects.filter(key="monitoring:cluster-heartbeat").update(data=timezone.now().isoformat())
    now = timezone.now()
    Failure.objects.create(id="f1", name="f1", func="math.floor", started=now, stopped=now, success=False)
    assert result(checks.QueueCheck).status == WARNING


def test_api_budget_warns_at_80_percent_and_fails_when_used_up(healthy, settings):
    settings.ZOHO_DAILY_LIMIT = 1000
    today = timezone.now().date()
    usage = ApiUsage.objects.create(day=today, organization_id="1", endpoint="POST /customers", calls=799)
    assert result(checks.ApiBudgetCheck).status == OK
    ApiUsage.objects.filter(pk=usage.pk).update(calls=800)
    assert result(checks.ApiBudgetCheck).status == WARNING
    ApiUsage.objects.filter(pk=usage.pk).update(calls=1000)
    assert result(checks.ApiBudgetCheck).status == FAILED
    ApiUsage.objects.filter(pk=usage.pk).update(calls=10)
    SyncRun.objects.create(run_id="d" * 32, kind="backfill", entities="customer", rate_limited=3)
    throttled = result(checks.ApiBudgetCheck)
    assert throttled.status == WARNING and "3 answers of 429" in throttled.summary


def test_a_check_that_breaks_is_a_failure_not_a_crash(healthy, monkeypatch):
    monkeypatch.setattr(checks.SyncStatusCheck, "check", lambda self: 1 / 0)
    outcome = result(checks.SyncStatusCheck)
    assert outcome.status == FAILED and "ZeroDivisionError" in outcome.summary


def test_health_endpoint_runs_the_cheap_checks_only(healthy, client):
    calls_before = healthy.counters()["total"]
    response = client.get("/health/")
    assert response.status_code == 200 and response.json()["status"] == HEALTHY
    names = {c["name"] for c in response.json()["checks"]}
    assert "token, organization, one read" not in names and "records by state" in names
    assert all("details" not in c for c in response.json()["checks"]), "counts and hosts are for operators"
    assert healthy.counters()["total"] == calls_before, "no call to Zoho per request"
    make_service()
    CustomerService.objects.update(zoho_id="903000000000002")
    response = client.get("/health/")
    assert response.status_code == 503 and response.json()["status"] == UNHEALTHY


def test_health_live_stays_up_while_the_product_is_unhealthy(healthy, client):
    """The load balancer's check answers for this process and its database only: an unhealthy product (here an
    orphaned subscription) leaves /health/ at 503 for monitors but keeps the admin served."""
    make_service()
    CustomerService.objects.update(zoho_id="903000000000002")
    assert client.get("/health/").status_code == 503
    calls_before = healthy.counters()["total"]
    response = client.get("/health/live/")
    assert response.status_code == 200 and response.json() == {"status": "alive"}
    assert healthy.counters()["total"] == calls_before, "no call to Zoho"


def test_the_command_prints_standard_detailed_email_and_json(healthy):
    make_customer()
    Customer.objects.update(sync_status=SyncStatus.FAILED, next_retry_at=None)

    def run(*args):
        out = StringIO()
        call_command("zoho_health_check", *args, stdout=out)
        return out.getvalue()

    standard = run()
    assert standard.startswith("Zoho sync health: DEGRADED") and "WARNING records by state" in standard
    detailed = run("--detailed")
    assert "customer: needs_person 1" not in standard and "customer: needs_person 1" in detailed
    assert "Every record by state" in detailed and re.search(r"\ncustomer\s+0\s+1\s", detailed), "the full table"
    email = run("--email")
    assert email.startswith("Subject: [Zoho sync] DEGRADED") and "customer: needs_person 1" in email
    data = json.loads(run("--json"))
    assert data["status"] == DEGRADED and {c["status"] for c in data["checks"]} == {OK, WARNING}


def test_one_zoho_id_one_record_is_held_by_the_database(healthy, monkeypatch):
    assert result(checks.DuplicateZohoIdsCheck).status == OK
    from django.db import connection

    real = connection.introspection.get_constraints

    def without_unique(cursor, table):
        found = real(cursor, table)
        return {k: v for k, v in found.items() if not (v["unique"] and v["columns"] == ["zoho_id"])} \
            if table == "zoho_sync_customer" else found

    monkeypatch.setattr(connection.introspection, "get_constraints", without_unique)
    outcome = result(checks.DuplicateZohoIdsCheck)
    assert outcome.status == FAILED and outcome.details == (
        "customer: no unique constraint on zoho_id; 0 Zoho ids shared",)
