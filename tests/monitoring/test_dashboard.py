"""The admin's sync dashboard: every section tells the truth about the same records the commands describe, it is
linked from the admin index, refreshes in place, and shows actions only to those who may sync."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.utils import timezone

from monitoring.heartbeat import cluster_heartbeat
from monitoring.models import DailyMetric
from tests.builders import make_customer, make_invoice
from zoho_sync import selectors
from zoho_sync.models import ApiUsage, Customer, SyncLog, SyncRun, SyncStatus

pytestmark = pytest.mark.django_db
URL = "/admin/dashboard/"


def section(html: str, element_id: str) -> str:
    start = html.index(f'id="{element_id}"')
    end = html.find("<section", start)
    return html[start:end if end > 0 else None]


@pytest.fixture
def records():
    synced, failed, pending = make_customer(), make_customer(), make_customer()
    Customer.objects.filter(pk=synced.pk).update(sync_status=SyncStatus.SYNCED, zoho_id="9001")
    Customer.objects.filter(pk=failed.pk).update(sync_status=SyncStatus.FAILED, last_error_kind="invalid_data",
                                                 last_sync_error="Email address 'x' is not valid.")
    now = timezone.now()
    for status, n in (("success", 3), ("failed", 1)):
        for _ in range(n):
            SyncLog.objects.create(entity="customer", object_pk=str(synced.pk), object_repr="CT", action="create",
                                   status=status, message=f"a {status} push", created_at=now - timedelta(minutes=5))
    SyncLog.objects.create(entity="customer", object_pk="1", action="create", status="failed",
                           created_at=now - timedelta(days=2))  # outside 24 h: in the 7 days through the rollup
    yesterday = now.date() - timedelta(days=1)
    DailyMetric.objects.create(day=yesterday, entity="customer", attempts=12, successes=10, failures=2)
    DailyMetric.objects.create(day=yesterday - timedelta(days=10), entity="invoice", attempts=4, successes=4)
    return synced, failed, pending


def test_every_section_for_an_operator(admin_client, records, settings):
    settings.ZOHO_DAILY_LIMIT = 1000
    ApiUsage.objects.create(day=timezone.now().date(), organization_id="1", endpoint="POST /customers", calls=250)
    SyncRun.objects.create(run_id="r" * 32, kind="backfill", entities="customer", status="running", records=40,
                           host="web-1")
    resume = timezone.now() + timedelta(hours=5)
    SyncRun.objects.create(run_id="s" * 32, kind="backfill", entities="all", status="stopped",
                           stop_reason="Zoho's daily quota is used up", resume_at=resume,
                           started_at=timezone.now() - timedelta(hours=1))
    response = admin_client.get(URL)
    assert response.status_code == 200
    html = response.content.decode()

    status = section(html, "overall-status")
    assert "DEGRADED" in status and "1 records need a person" in status
    assert "No django-q2 cluster is running" in status and "manage.py qcluster" in status

    card = section(html, "entity-cards")
    card = card[card.index('id="card-customer"'):card.index('id="card-service_package"')]
    assert '<td class="n-total">3</td>' in card and '<td class="n-synced">1</td>' in card
    assert '<td class="n-pending">1</td>' in card and "1</a> (1 need a person)" in card
    assert '<td class="rate-24h">75.0% <small>of 4</small></td>' in card
    assert '<td class="rate-7d">81.2% <small>of 16</small></td>' in card  # 10+3 of 12+4 (rollup + today)

    budget = section(html, "api-budget")
    assert "<strong>250</strong> of 1,000 calls (25.0%)" in budget and "90.0 budgeted of Zoho's 100" in budget

    runs = section(html, "sync-runs")
    assert "Backfill since" in runs and "on web-1 (40 records" in runs
    assert "Zoho&#x27;s daily quota is used up" in runs
    assert f"resumes {timezone.localtime(resume):%Y-%m-%d %H:%M}" in runs

    chart = section(html, "outcome-chart")
    yesterday = timezone.now().date() - timedelta(days=1)
    assert f"{yesterday:%Y-%m-%d}: 10 succeeded, 2 failed" in chart
    assert "3 succeeded, 1 failed (today so far)" in chart
    assert chart.count('class="bar"') == 14

    failures = section(html, "current-failures")
    failed = records[1]
    assert "Current failures (1)" in failures and failed.account_number in failures and "Push now" in failures

    activity = section(html, "recent-activity")
    assert activity.count('class="activity activity-success"') == 3 and "a success push" in activity

    # Linked from the admin index; nothing loaded from outside the site.
    assert 'id="dashboard-link"' in admin_client.get("/admin/").content.decode()
    for attribute in ('src="http', "src='http", 'href="http', "href='http", "//cdn"):
        assert attribute not in html


def test_link_runs_show_with_the_backfills_and_retries(admin_client, records):
    finished = timezone.now() - timedelta(minutes=3)
    SyncRun.objects.create(run_id="l" * 32, kind=SyncRun.Kind.LINK, entities="customer", status="unsettled",
                           records=5, api_calls=1, exit_code=2, finished_at=finished,
                           counts={"customer": {"linked_by_key": 2, "needs_person": 1}})
    SyncRun.objects.create(run_id="t" * 32, kind=SyncRun.Kind.TRIGGER, entities="customer", status="settled")
    runs = section(admin_client.get(URL).content.decode(), "sync-runs")
    assert "Link to existing Zoho records (--link-only)" in runs and "5 records, 1 calls" in runs
    assert "Triggered push" not in runs, "one a record: too many to show"
    listing = admin_client.get("/admin/zoho_sync/syncrun/", {"kind": "link"}).content.decode()
    assert "llllllllllll" in listing and "tttttttttttt" not in listing


def test_the_counts_are_the_commands_counts(admin_client, records):
    html = admin_client.get(URL).content.decode()
    for name, states in selectors.sync_state_counts().items():
        card = html[html.index(f'id="card-{name}"'):]
        total = sum(states.values())
        assert f'<td class="n-total">{total:,}</td>' in card
        assert f'<td class="n-synced">{states["synced"]:,}</td>' in card


def test_recent_activity_filters(admin_client, records):
    make_invoice()
    old = timezone.now() - timedelta(hours=3)
    SyncLog.objects.create(entity="invoice", object_pk="5", object_repr="INV-OLD", action="create", status="failed",
                           message="an old invoice failure", created_at=old)
    SyncLog.objects.create(entity="invoice", object_pk="6", object_repr="INV-NEW", action="create", status="failed",
                           message="a new invoice failure")

    def rows(**params):
        html = admin_client.get(URL, params).content.decode()
        return section(html, "recent-activity").count('<tr class="activity')

    assert rows() == 6  # 4 customer + 2 invoice in 24 h
    assert rows(entity="invoice") == 2
    assert rows(entity="invoice", period="1h") == 1
    assert rows(status="failed") == 3
    assert rows(entity="customer", status="success", period="7d") == 3


def test_partial_refresh_and_cluster_state(admin_client, records):
    whole = admin_client.get(URL).content.decode()
    assert 'data-refresh-seconds="30"' in whole and 'id="refresh-toggle"' in whole and "dashboard.js" in whole
    cluster_heartbeat()
    partial = admin_client.get(URL, {"partial": "1"}).content.decode()
    assert "<html" not in partial and 'id="entity-cards"' in partial
    assert "A django-q2 cluster is running" in partial
    assert 'data-refresh-seconds="5"' in admin_client.get(URL, {"refresh": "5"}).content.decode()


def test_without_the_permission_no_action_is_offered(django_user_model, records):
    user = django_user_model.objects.create_user("looker", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_syncfailure"))
    client = Client()
    client.force_login(user)
    html = client.get(URL).content.decode()
    assert records[1].account_number in section(html, "current-failures")
    assert "Push now" not in html and "Retry all failures" not in html
    user.user_permissions.add(Permission.objects.get(codename="sync_to_zoho"))
    user = django_user_model.objects.get(pk=user.pk)  # permissions are cached per user object
    client.force_login(user)
    html = client.get(URL).content.decode()
    assert "Push now" in html and "Retry all failures" in html


def test_login_is_required(client):
    response = client.get(URL)
    assert response.status_code == 302 and response.url.startswith("/admin/login/")
