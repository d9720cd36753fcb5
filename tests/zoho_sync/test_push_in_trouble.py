"""When Zoho is down, refuses our credentials or the day's quota is spent: "Push to Zoho now" answers with a message,
never a 500; the record says where it stands (failed, retrying / needs a person / waiting for the quota until
HH:MM UTC) and the sync log has the attempt; the dashboard and the record page show the banner; the dashboard's
overall status is `zoho_health_check --json`'s; the connectivity reading costs no call per page view."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from monitoring.heartbeat import cluster_heartbeat
from tests.builders import make_customer
from zoho_sync import services
from zoho_sync.connectivity import CREDENTIALS, UNREACHABLE, connectivity_cached, connectivity_refresh_due
from zoho_sync.models import Customer, ErrorKind, SharedState, SyncFailure, SyncLog, SyncState, SyncStatus
from zoho_sync.zoho import forget_clients

pytestmark = pytest.mark.django_db


@pytest.fixture
def trouble(zoho_settings, zoho_sandbox, admin_client):
    zoho_settings.SYNC_TRIGGERS_ENABLED = False
    zoho_settings.ZOHO_RETRY_MAX_ATTEMPTS = 2  # the client's own retries, short: the push's outcome is the point
    zoho_sandbox.configure(per_minute=0, daily=0)
    cluster_heartbeat()
    return zoho_sandbox


def push_now(client, customer):
    """POST "Push to Zoho now" on the record's page and follow the redirect: the page, never an error page."""
    response = client.post(reverse("admin:zoho_sync_customer_push", args=[customer.pk]), follow=True)
    assert response.status_code == 200, response.content[:500]
    return response


def messages_of(response) -> str:
    return " | ".join(str(m) for m in response.context["messages"])


def health_json() -> tuple[dict, int]:
    out = StringIO()
    try:
        call_command("zoho_health_check", "--json", stdout=out)
        code = 0
    except CommandError as exit_code:
        code = exit_code.returncode
    return json.loads(out.getvalue()), code


def dashboard_status(client) -> tuple[str, str]:
    page = client.get("/admin/dashboard/").content.decode()
    assert "Overall: <span class=\"status-word\">" in page
    status = page.split('class="status-word">', 1)[1].split("<", 1)[0]
    return status, page


def test_an_outage_is_a_retrying_failure_a_banner_and_the_same_status_everywhere(trouble, admin_client):
    customer = make_customer()
    trouble.configure(error_rate=1.0)
    response = push_now(admin_client, customer)
    assert "1 record(s) failed (0 need a person, 1 will be retried)" in messages_of(response)
    record = Customer.objects.get(pk=customer.pk)
    assert record.sync_state == SyncState.RETRYING and record.last_error_kind in (ErrorKind.SERVER, ErrorKind.NETWORK)
    assert SyncLog.objects.filter(object_pk=str(customer.pk), status=SyncLog.Status.FAILED).count() == 1
    assert connectivity_cached().problem == UNREACHABLE, "the push told the shared reading"
    assert 'id="banner-unreachable"' in response.content.decode(), "the record page shows the banner"

    report, code = health_json()
    assert report["status"] == "UNHEALTHY" and code == 1
    status, page = dashboard_status(admin_client)
    assert status == report["status"] and 'id="banner-unreachable"' in page
    health = admin_client.get("/health/")
    assert health.status_code == 503 and health.json()["status"] == report["status"]

    # Zoho is back: the connectivity schedule checks again (the reading failed), a push clears the banner.
    trouble.configure(error_rate=0.0)
    assert connectivity_refresh_due().ok
    response = push_now(admin_client, customer)
    assert "1 record(s) pushed to Zoho." in messages_of(response)
    assert 'id="banner-unreachable"' not in response.content.decode()
    assert dashboard_status(admin_client)[0] == health_json()[0]["status"]


def test_credentials_refused_is_a_failure_that_needs_a_person_on_the_record_and_in_the_log(trouble, admin_client,
                                                                                           zoho_settings):
    customer = make_customer()
    trouble.revoke_refresh_token()
    forget_clients()
    SharedState.objects.filter(key__startswith="token").delete()
    response = push_now(admin_client, customer)
    text = messages_of(response)
    assert "Zoho refused our credentials" in text and "Zoho is not configured" not in text
    record = Customer.objects.get(pk=customer.pk)
    assert record.sync_state == SyncState.NEEDS_PERSON and record.last_error_kind == ErrorKind.AUTHENTICATION
    assert "refresh token" in record.last_sync_error
    log = SyncLog.objects.get(object_pk=str(customer.pk))
    assert log.status == SyncLog.Status.FAILED and log.error_kind == ErrorKind.AUTHENTICATION
    assert log.error_type == "ZohoCredentialsError"
    assert SyncFailure.objects.filter(entity="customer", record_id=customer.pk).exists(), "in Failed records"
    assert trouble.config.refresh_token not in record.last_sync_error + log.message, "no secret on the record"
    assert connectivity_cached().problem == CREDENTIALS
    page = response.content.decode()
    assert 'id="banner-credentials"' in page and "Failed, needs a person" in page

    report, code = health_json()
    assert code == 1 and report["status"] == "UNHEALTHY"
    connectivity = next(c for c in report["checks"] if c["category"] == "Zoho API connectivity")
    assert connectivity["status"] == "failed" and "refresh token" in connectivity["summary"]
    status, page = dashboard_status(admin_client)
    assert status == "UNHEALTHY" and 'id="banner-credentials"' in page

    # A person sets a new refresh token and runs the runbook's zoho_check_connection: the banner goes at once.
    trouble.configure(refresh_token="1000.a-new-refresh-token")
    zoho_settings.ZOHO_REFRESH_TOKEN = "1000.a-new-refresh-token"
    call_command("zoho_check_connection", stdout=StringIO())
    assert connectivity_cached().ok
    assert 'id="banner-credentials"' not in dashboard_status(admin_client)[1]


def test_a_spent_quota_leaves_the_record_waiting_for_the_quota_until_the_reset(trouble, admin_client, zoho_settings):
    first, second, third = make_customer(), make_customer(), make_customer()
    trouble.configure(daily=1)
    push_now(admin_client, first)
    response = push_now(admin_client, second)  # Zoho answers 429, code 45
    text = messages_of(response)
    assert "wait for Zoho's daily API quota" in text and "waiting for the quota until 00:00 UTC" in text
    record = Customer.objects.get(pk=second.pk)
    midnight = (datetime.now(UTC) + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    assert record.sync_state == SyncState.RETRYING and record.last_error_kind == ErrorKind.RATE_LIMIT
    assert abs((record.next_retry_at - midnight).total_seconds()) < 120, record.next_retry_at
    assert record.sync_attempts == 0, "a spent quota is not an attempt of the record's own"
    assert "Waiting for Zoho's daily API quota" in record.last_sync_error and "00:00 UTC" in record.last_sync_error
    log = SyncLog.objects.get(object_pk=str(second.pk))
    assert log.status == SyncLog.Status.FAILED and log.error_kind == ErrorKind.RATE_LIMIT and log.zoho_code == 45
    page = response.content.decode()
    assert 'id="banner-quota"' in page and "used up until 00:00 UTC" in page

    # The save's queued push (the django-q2 task) meets it too: the record says so, the task does not fail.
    from zoho_sync.tasks import push_record

    assert "now retrying" in push_record("customer", third.pk)
    assert Customer.objects.get(pk=third.pk).sync_state == SyncState.RETRYING

    report, code = health_json()
    budget = next(c for c in report["checks"] if c["category"] == "API budget")
    assert budget["status"] == "failed" and code == 1
    status, page = dashboard_status(admin_client)
    assert status == report["status"] == "UNHEALTHY" and 'id="banner-quota"' in page


def test_pages_read_the_stored_connectivity_and_call_zoho_never(trouble, admin_client):
    customer = make_customer()
    Customer.objects.filter(pk=customer.pk).update(sync_status=SyncStatus.FAILED, last_sync_error="x")
    health_json()  # the live check stores its reading
    calls = trouble.counters()["total"]
    for _ in range(3):
        assert admin_client.get("/admin/dashboard/").status_code == 200
        assert admin_client.get(reverse("admin:zoho_sync_customer_change", args=[customer.pk])).status_code == 200
        assert admin_client.get("/health/").status_code == 200
    assert trouble.counters()["total"] == calls, "no call to Zoho per page view"
    assert connectivity_refresh_due() is None, "a fresh good reading costs the schedule no call either"
    assert trouble.counters()["total"] == calls


def test_the_connectivity_schedule_is_installed_and_runs(trouble):
    from monitoring.tasks import connectivity_check

    assert connectivity_cached() is None
    assert connectivity_check().startswith("ok:")
    assert connectivity_cached().ok
    call_command("zoho_schedules", stdout=StringIO())
    from django_q.models import Schedule

    assert Schedule.objects.filter(name="monitoring: Zoho connectivity", minutes=5).exists()


def test_a_backfill_stops_at_refused_credentials_with_the_record_failed(trouble):
    for _ in range(3):
        make_customer()
    trouble.revoke_refresh_token()
    forget_clients()
    SharedState.objects.filter(key__startswith="token").delete()
    with pytest.raises(Exception, match="refresh token"):
        services.sync_pending(entity="customer")
    states = sorted(Customer.objects.values_list("sync_status", flat=True))
    assert states.count(SyncStatus.FAILED) == 1, "the first push fails for a person; the run stops there"
    assert SyncLog.objects.filter(status=SyncLog.Status.FAILED, error_kind=ErrorKind.AUTHENTICATION).count() == 1


def test_a_lock_out_is_a_message_and_a_retry_time_not_a_minute_of_waiting(trouble, admin_client):
    import time

    from zoho_sync.zoho import get_zoho_client

    customer = make_customer()
    calls = trouble.counters()["total"]
    get_zoho_client().budget.block(120)  # what the client does when Zoho answers code 44, for every process
    started = time.monotonic()
    response = push_now(admin_client, customer)
    assert time.monotonic() - started < 5, "the page does not wait the lock-out out"
    assert "not pushed: Zoho locked us out for calling too fast, until" in messages_of(response)
    assert trouble.counters()["total"] == calls, "nothing was sent"
    record = Customer.objects.get(pk=customer.pk)
    assert record.sync_state == SyncState.RETRYING and record.last_error_kind == ErrorKind.RATE_LIMIT
    assert "locked us out" in record.last_sync_error and record.sync_attempts == 0
    assert SyncLog.objects.filter(object_pk=str(customer.pk), error_kind=ErrorKind.RATE_LIMIT).count() == 1
    assert 'id="banner-lockout"' in response.content.decode()


def test_the_saves_queued_push_meets_refused_credentials_on_the_record_not_as_a_crashed_task(trouble):
    from zoho_sync.tasks import push_record

    customer = make_customer()
    trouble.revoke_refresh_token()
    forget_clients()
    SharedState.objects.filter(key__startswith="token").delete()
    said = push_record("customer", customer.pk)
    assert "refused our credentials" in said and "needs a person" in said
    record = Customer.objects.get(pk=customer.pk)
    assert record.sync_state == SyncState.NEEDS_PERSON and record.last_error_kind == ErrorKind.AUTHENTICATION
    assert SyncLog.objects.filter(object_pk=str(customer.pk), status=SyncLog.Status.FAILED).count() == 1
