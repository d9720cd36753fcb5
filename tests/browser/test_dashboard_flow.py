"""The morning in a real browser: log in, open the dashboard, see a failed record, open it, fix it, push it, and see
it turn synced on the dashboard when the dashboard refreshes itself (no reload). Screenshots of the dashboard, the
failed records and a record page go to the screenshot folder (var/screenshots unless SCREENSHOT_DIR)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.builders import make_customer
from zoho_sync import services
from zoho_sync.models import Customer, SyncLog, SyncStatus

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def operator(django_user_model):
    return django_user_model.objects.create_superuser("operator", "ops@example.com", "operator-pass-1")


def test_fix_and_push_a_failed_record_from_the_dashboard(page, browser, admin_login, live_server, operator,
                                                         zoho_settings, zoho_sandbox, screenshot_dir):
    zoho_sandbox.configure(per_minute=0)
    zoho_settings.SYNC_TRIGGERS_ENABLED = False  # no cluster runs here: the push is the button's
    customer = make_customer(account_number="CT-2026-00042", email="ops at example dot com")
    services.sync_object(entity="customer", pk=customer.pk)
    assert Customer.objects.get(pk=customer.pk).sync_status == SyncStatus.FAILED

    admin_login("operator", "operator-pass-1")
    expect(page.locator("#dashboard-link")).to_be_visible()
    page.click("#dashboard-link")
    page.goto(f"{live_server.url}/admin/dashboard/?refresh=2")
    failures = page.locator("#current-failures")
    expect(failures).to_contain_text("CT-2026-00042")
    expect(failures).to_contain_text("is not valid")
    expect(page.locator("#card-customer .n-failed")).to_contain_text("1")
    page.screenshot(path=str(screenshot_dir / "dashboard.png"), full_page=True)
    page.evaluate("window.notReloaded = true")  # a full reload would lose it

    # The refresh can be paused and resumed (remembered in the browser).
    page.click("#refresh-toggle")
    expect(page.locator("#refresh-state")).to_have_text("Refresh paused")
    page.click("#refresh-toggle")
    expect(page.locator("#refresh-state")).to_have_text("Refreshes every 2 s")

    # The failed records list, then the record itself, in a second tab: the dashboard stays open.
    record = page.context.new_page()
    record.goto(f"{live_server.url}/admin/zoho_sync/syncfailure/")
    expect(record.locator("#result_list")).to_contain_text("CT-2026-00042")
    expect(record.locator("#result_list")).to_contain_text("Invalid local data")
    record.screenshot(path=str(screenshot_dir / "failures.png"), full_page=True)
    record.click("#result_list a:has-text('CT-2026-00042')")
    expect(record.locator("#sync-banner")).to_contain_text("Failed, needs a person")
    expect(record.locator("#sync-error")).to_contain_text("ops at example dot com")
    expect(record.locator("#sync-history")).to_contain_text("Failed")
    record.screenshot(path=str(screenshot_dir / "record.png"), full_page=True)

    # Fix it, save, push it.
    record.fill("#id_email", "ops@example.com")
    with record.expect_navigation():
        record.click("input[name=_continue]")
    expect(record.locator("#sync-banner")).to_contain_text("Pending")
    with record.expect_navigation():
        record.click("#push-to-zoho")
    expect(record.locator("ul.messagelist")).to_contain_text("1 record(s) pushed to Zoho.")
    expect(record.locator("#sync-banner")).to_contain_text("Synced")
    expect(record.locator("#zoho-link")).to_be_visible()
    record.screenshot(path=str(screenshot_dir / "record-synced.png"), full_page=True)
    assert [c["email"] for c in zoho_sandbox.records("customers")] == ["ops@example.com"]

    # Back on the dashboard, never reloaded: its own refresh shows the record synced.
    expect(page.locator("#no-failures")).to_be_visible(timeout=15_000)
    expect(page.locator("#card-customer .n-synced")).to_have_text("1")
    assert page.evaluate("window.notReloaded") is True
    assert int(page.locator("#dashboard").get_attribute("data-refreshes")) >= 1
    page.screenshot(path=str(screenshot_dir / "dashboard-after.png"), full_page=True)
    for name in ("dashboard.png", "failures.png", "record.png"):
        assert (screenshot_dir / name).stat().st_size > 10_000


def test_changelists_fit_1400_pixels(page, admin_login, live_server, operator, screenshot_dir):
    error = "Zoho says the billing address is incomplete: the postal code is missing for country " * 3
    for n in range(5):
        customer = make_customer(company_name=f"A company with a rather long trading name number {n} Ltd")
        Customer.objects.filter(pk=customer.pk).update(sync_status=SyncStatus.FAILED, last_sync_error=error,
                                                       last_error_kind="validation", zoho_id=f"9030000000{n:05d}")
        SyncLog.objects.create(entity="customer", object_pk=str(customer.pk), object_repr=customer.account_number,
                               action="update", status="failed", message=error, error_kind="validation",
                               http_status=400, zoho_code=1001, run_id="f" * 32)
    admin_login("operator", "operator-pass-1")
    for path, name in (("zoho_sync/customer", "customers"), ("zoho_sync/syncfailure", "failures-list"),
                       ("zoho_sync/synclog", "synclog")):
        page.goto(f"{live_server.url}/admin/{path}/")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 1400, f"{path} is {width} px wide at 1400"
        results = page.evaluate("[document.querySelector('.results').scrollWidth, "
                                "document.querySelector('.results').clientWidth]")
        assert results[0] <= results[1], f"{path}: the table scrolls sideways ({results[0]} px in {results[1]})"
        last = page.locator("#result_list tbody tr").first.locator("td").last.bounding_box()
        assert last["x"] + last["width"] <= 1400, f"{path}: the last column is off-screen ({last})"
        if name != "synclog":
            box = page.locator("#result_list tbody tr").first.locator(".sync-error").bounding_box()
            assert box and box["x"] + box["width"] <= 1400, f"{path}: the error is off-screen ({box})"
        page.screenshot(path=str(screenshot_dir / f"{name}-1400.png"))
