"""The morning with trouble, in a real browser: Zoho fails every call, then refuses our refresh token, then the day's
quota is spent. Each time the dashboard shows the overall status `zoho_health_check --json` prints (the real
command, run here), the banner that says what is wrong, and "Push to Zoho now" on a record page answers with a
message on the page (never a 500) while the record says where it stands. Then recovery: a new refresh token, the
quota's reset, the failed records retried from the Failed records page, and all green. Screenshots of each step go
to the screenshot folder (var/screenshots unless SCREENSHOT_DIR)."""

from __future__ import annotations

import json
from dataclasses import replace
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from playwright.sync_api import expect

from monitoring.heartbeat import cluster_heartbeat
from tests.builders import make_customer
from zoho_sync import services
from zoho_sync.models import Customer, SharedState, SyncLog, SyncState
from zoho_sync.shared_state import state_backends
from zoho_sync.zoho import forget_clients

pytestmark = pytest.mark.django_db(transaction=True)
STATUS_WORD = "#overall-status .status-word"


@pytest.fixture
def operator(django_user_model):
    return django_user_model.objects.create_superuser("operator", "ops@example.com", "operator-pass-1")


def health_check_json() -> dict:
    """`manage.py zoho_health_check --json`, as cron runs it (exit 1 when unhealthy)."""
    out = StringIO()
    try:
        call_command("zoho_health_check", "--json", stdout=out)
    except CommandError as exit_code:
        assert exit_code.returncode == 1
    return json.loads(out.getvalue())


def no_wider_than_the_viewport(page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 1400, f"{page.url} is {width} px wide at 1400"


def test_the_morning_with_trouble(page, admin_login, live_server, operator, zoho_settings, zoho_sandbox,
                                  screenshot_dir):
    sandbox = zoho_sandbox
    sandbox.configure(per_minute=0, daily=0)
    zoho_settings.SYNC_TRIGGERS_ENABLED = False  # no cluster runs here: the pushes are the button's
    zoho_settings.ZOHO_RETRY_MAX_ATTEMPTS = 2  # the client's own retries, short
    # Today's failures stay in today's success rate after the recovery; the target is lowered so that a recovered
    # product reads HEALTHY (the default 98% would rightly keep it DEGRADED for the rest of the day).
    zoho_settings.MONITORING_SUCCESS_RATE_TARGET, zoho_settings.MONITORING_SUCCESS_RATE_CRITICAL = 0.3, 0.1
    customers = [make_customer() for _ in range(6)]
    for customer in customers:
        services.sync_object(entity="customer", pk=customer.pk)
    assert set(Customer.objects.values_list("sync_status", flat=True)) == {"synced"}
    outage, refused, quota = customers[:3]
    base = live_server.url

    def dashboard_agrees(expected: str, banner: str | None, shot: str) -> None:
        cluster_heartbeat()  # no cluster runs in a test: its beat is the queue check's proof
        report = health_check_json()
        assert report["status"] == expected, report
        page.goto(f"{base}/admin/dashboard/")
        expect(page.locator(STATUS_WORD)).to_have_text(report["status"])
        if banner:
            expect(page.locator(f"#banner-{banner}")).to_be_visible()
        else:
            expect(page.locator("#status-banners")).to_have_count(0)
        no_wider_than_the_viewport(page)
        page.screenshot(path=str(screenshot_dir / f"{shot}-dashboard.png"), full_page=True)

    def push_now(customer, shot: str) -> str:
        """Change the record (a push of an unchanged record calls nothing), then "Push to Zoho now" on its page."""
        customer.refresh_from_db()
        customer.company_name = f"{customer.company_name or 'Acme'} ({shot})"
        customer.save()
        page.goto(f"{base}/admin/zoho_sync/customer/{customer.pk}/change/")
        with page.expect_navigation() as answer:
            page.click("#push-to-zoho")
        assert answer.value.status == 200, f"Push now answered {answer.value.status}"
        expect(page.locator("ul.messagelist")).to_be_visible()
        assert "Server Error" not in page.content()
        no_wider_than_the_viewport(page)
        page.screenshot(path=str(screenshot_dir / f"{shot}-record.png"), full_page=True)
        return page.locator("ul.messagelist").inner_text()

    admin_login("operator", "operator-pass-1")
    dashboard_agrees("HEALTHY", None, "morning-0-green")

    # 1. Zoho fails every call.
    sandbox.configure(error_rate=1.0)
    said = push_now(outage, "morning-1-outage")
    assert "1 record(s) failed (0 need a person, 1 will be retried)" in said
    expect(page.locator("#banner-unreachable")).to_be_visible()
    expect(page.locator("#sync-banner")).to_contain_text("Failed, retrying")
    dashboard_agrees("UNHEALTHY", "unreachable", "morning-1-outage")
    sandbox.configure(error_rate=0.0)

    # 2. Zoho refuses our refresh token.
    sandbox.revoke_refresh_token()
    forget_clients()
    SharedState.objects.filter(key__startswith="token").delete()  # the access token it still held goes too
    said = push_now(refused, "morning-2-credentials")
    assert "Zoho refused our credentials" in said and "Zoho is not configured" not in said
    expect(page.locator("#banner-credentials")).to_be_visible()
    expect(page.locator("#sync-banner")).to_contain_text("Failed, needs a person")
    expect(page.locator("#sync-history")).to_contain_text("Failed")
    dashboard_agrees("UNHEALTHY", "credentials", "morning-2-credentials")
    page.goto(f"{base}/admin/zoho_sync/syncfailure/")
    expect(page.locator("#result_list")).to_contain_text(refused.account_number)
    assert SyncLog.objects.filter(object_pk=str(refused.pk), status="failed", error_kind="authentication").exists()

    # A person sets a new refresh token; the health check says Zoho answers again.
    sandbox.configure(refresh_token="1000.morning-new-refresh-token")
    zoho_settings.ZOHO_REFRESH_TOKEN = "1000.morning-new-refresh-token"
    health_check_json()

    # 3. The day's quota is spent.
    sandbox.configure(daily=1)
    said = push_now(quota, "morning-3-quota")
    assert "waiting for the quota until 00:00 UTC" in said, said
    expect(page.locator("#banner-quota")).to_contain_text("used up until 00:00 UTC")
    expect(page.locator("#sync-banner")).to_contain_text("Failed, retrying")
    expect(page.locator("#sync-error")).to_contain_text("Waiting for Zoho's daily API quota")
    dashboard_agrees("UNHEALTHY", "quota", "morning-3-quota")

    # Recovery: the quota resets at 00:00 UTC (the shared budget's day turns over), Zoho answers.
    sandbox.configure(daily=0)
    organization = zoho_settings.ZOHO_ORGANIZATION_ID
    state_backends("")[1].update(f"org:{organization}",
                                 lambda state: (replace(state, day="2000-01-01", day_count=0, day_full=False), None))
    health_check_json()

    # Retry from the Failed records page: every failed record, at once.
    page.goto(f"{base}/admin/zoho_sync/syncfailure/")
    page.check("#action-toggle")
    page.select_option("select[name=action]", "retry_now")
    with page.expect_navigation() as answer:
        page.click("button[name=index]")
    assert answer.value.status == 200
    expect(page.locator("ul.messagelist")).to_contain_text("3 record(s) pushed to Zoho.")
    assert {Customer.objects.get(pk=c.pk).sync_state for c in customers} == {SyncState.SYNCED}
    dashboard_agrees("HEALTHY", None, "morning-4-green")
    expect(page.locator("#no-failures")).to_be_visible()
