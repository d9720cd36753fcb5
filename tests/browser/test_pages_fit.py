"""Every page the operator reads fits a 1,400 px wide browser, with the long cells real trouble writes: long errors
(an unbroken URL in one), long event outcomes, a long stop reason. A real backfill against the sandbox writes the
run, the failed records, the skipped ones and the log; the long texts are then written onto those rows as Zoho and
the sync would. On each page a real chromium checks that neither the document nor any table (nor a box around one)
is wider than the viewport, and takes a screenshot into the screenshot folder (var/screenshots unless
SCREENSHOT_DIR) to look at."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.core.management import call_command
from django.urls import reverse
from playwright.sync_api import expect

from tests.browser.conftest import VIEWPORT
from tests.builders import make_customer, make_invoice
from zoho_sync.models import Customer, Invoice, SyncRun, SyncStatus, ZohoEvent

pytestmark = pytest.mark.django_db(transaction=True)

LONG_URL = "https://www.zohoapis.com/billing/v1/customers/" + "460000000012345" * 12 + "?organization_id=10234695"
LONG_ERROR = ("Zoho answered HTTP 400 (code 1002, 'The customer's billing address is incomplete or could not be "
              "validated against the postal service, so the customer was not created'): fix the address on the "
              f"record, then push it again. Request: {LONG_URL}")
LONG_OUTCOME = ("Updated the local customer from Zoho: email changed from a-very-long-mailbox-name@billing."
                "example-company-with-a-long-domain.com to another-very-long-mailbox-name@accounts.example-company-"
                "with-a-long-domain.com; phone, company name and the billing address's street, city, state and zip "
                "changed too; " + "x" * 160)

# Elements wider than they show: the document, every table, every box around a table (Django's changelist wraps
# its table in a box that scrolls sideways: a table cut off there is as unread as one past the window), and anything
# of the page's content that reaches past the window's right edge (a field clipped by its box).
OVERFLOW_JS = """() => {
  const root = document.documentElement;
  const wide = [];
  if (root.scrollWidth > root.clientWidth) wide.push(`document ${root.scrollWidth} > ${root.clientWidth}`);
  const describe = (el) => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '')
    + (el.className && typeof el.className === 'string' ? '.' + el.className.trim().split(/\\s+/).join('.') : '');
  for (const table of document.querySelectorAll('table')) {
    if (!table.getClientRects().length) continue;  // not shown (a collapsed section)
    const right = Math.ceil(table.getBoundingClientRect().right);
    if (right > root.clientWidth) wide.push(`${describe(table)} ends at ${right} px`);
    for (let el = table; el && el !== root; el = el.parentElement) {
      if (el.scrollWidth > el.clientWidth + 1) wide.push(`${describe(el)} ${el.scrollWidth} > ${el.clientWidth}`);
    }
  }
  // Anything of the page's content past the window's right edge, clipped or not, is cut off.
  for (const el of document.querySelectorAll('#content *')) {
    const box = el.getBoundingClientRect();
    if (box.width && box.height && Math.floor(box.right) > root.clientWidth) {
      wide.push(`${describe(el)} ends at ${Math.ceil(box.right)} px`);
    }
  }
  return [...new Set(wide)];
}"""


def too_wide(page, name, screenshot_dir) -> dict[str, list[str]]:
    """Screenshot the page and say which boxes are wider than the viewport ({} is the answer wanted)."""
    assert page.viewport_size == VIEWPORT
    page.screenshot(path=str(screenshot_dir / f"fit-{name}.png"), full_page=True)
    wide = page.evaluate(OVERFLOW_JS)
    return {f"{name} ({page.url})": wide} if wide else {}


@pytest.fixture
def operator(django_user_model):
    return django_user_model.objects.create_superuser("operator", "ops@example.com", "operator-pass-1")


@pytest.fixture
def trouble(zoho_settings, zoho_sandbox):
    """A backfill through the sandbox: synced customers, failed ones (bad email), a skipped draft invoice."""
    zoho_sandbox.configure(per_minute=0)
    zoho_settings.SYNC_TRIGGERS_ENABLED = False
    good = [make_customer(account_number=f"CT-2026-{n:05d}") for n in range(1, 4)]
    bad = [make_customer(account_number=f"CT-2026-{n:05d}", email=f"billing-contact-{n} at example dot com")
           for n in range(10, 13)]
    make_invoice(customer=good[0], status=Invoice.Status.DRAFT)
    call_command("zoho_backfill", stdout=open("/dev/null", "w"), stderr=open("/dev/null", "w"))  # noqa: SIM115
    assert Customer.objects.filter(sync_status=SyncStatus.FAILED).count() == 3
    assert Invoice.objects.get().sync_status == SyncStatus.SKIPPED
    # As a failing Zoho writes them: the error of a failure is long, one holds an unbroken URL.
    Customer.objects.filter(pk=bad[0].pk).update(last_sync_error=LONG_ERROR)
    run = SyncRun.objects.get()
    SyncRun.objects.filter(pk=run.pk).update(
        stop_reason="The daily quota of Zoho's API calls (1000 a day for this organization) was spent; the run stops "
                    "and goes on at 00:00 UTC by itself, when the quota resets: " + LONG_URL)
    for n in range(3):
        ZohoEvent.objects.create(
            event_id=f"46000000{n:04d}", event_type="customer_updated_with_a_rather_long_event_type_name",
            source=ZohoEvent.Source.WEBHOOK, payload={"event_type": "customer_updated", "data": {"n": n}},
            entity="customer", zoho_id="4600000001234567890" + str(n), state=ZohoEvent.State.FAILED,
            attempts=3, last_error=LONG_ERROR, outcome=LONG_OUTCOME)
    return {"good": good, "bad": bad, "run": run}


def test_every_page_fits_1400px_with_long_cells(page, admin_login, live_server, operator, trouble, screenshot_dir):
    base = live_server.url
    wide: dict[str, list[str]] = {}  # every page is looked at, then all that do not fit are named at once
    admin_login("operator", "operator-pass-1")

    page.goto(f"{base}/admin/dashboard/")
    expect(page.locator("#current-failures")).to_contain_text("CT-2026-00010")
    wide |= too_wide(page, "dashboard", screenshot_dir)

    page.goto(f"{base}{reverse('admin:zoho_sync_syncfailure_changelist')}")
    expect(page.locator("#result_list")).to_contain_text("CT-2026-00011")
    expect(page.locator("#result_list")).to_contain_text("sync log")  # the History column, on screen
    wide |= too_wide(page, "failed-records", screenshot_dir)

    page.goto(f"{base}{reverse('admin:zoho_sync_synclog_changelist')}")
    expect(page.locator("#result_list")).to_contain_text("CT-2026-00012")
    wide |= too_wide(page, "sync-log", screenshot_dir)

    page.goto(f"{base}{reverse('admin:zoho_sync_syncrun_changelist')}")
    expect(page.locator("#result_list")).to_contain_text("daily quota")
    wide |= too_wide(page, "sync-runs", screenshot_dir)

    page.goto(f"{base}{reverse('admin:zoho_sync_syncrun_change', args=[trouble['run'].pk])}")
    # The run's details in words, the skips with their reason; never the stored JSON.
    details = page.locator("#run-details")
    expect(details).to_contain_text("3 created in Zoho, 3 failed and need a person")
    expect(details).to_contain_text("1 skipped (1: Draft invoices are pushed once issued)")
    expect(details).to_contain_text("4 API calls")
    assert "{" not in page.locator("#content").inner_text()
    wide |= too_wide(page, "sync-run", screenshot_dir)

    page.goto(f"{base}{reverse('admin:zoho_sync_zohoevent_changelist')}")
    expect(page.locator("#result_list")).to_contain_text("Updated the local customer")
    wide |= too_wide(page, "zoho-events", screenshot_dir)

    page.goto(f"{base}{reverse('admin:zoho_sync_zohoevent_change', args=[ZohoEvent.objects.first().pk])}")
    wide |= too_wide(page, "zoho-event", screenshot_dir)

    page.goto(f"{base}{reverse('admin:zoho_sync_customer_changelist')}")
    wide |= too_wide(page, "customers", screenshot_dir)

    page.goto(f"{base}{reverse('admin:zoho_sync_customer_change', args=[trouble['bad'][0].pk])}")
    expect(page.locator("#sync-error")).to_contain_text("billing address is incomplete")
    # The collapsed sync section says its summary; the history sits below the form, not behind it (its blue
    # heading once filled the gaps of the form as an empty band).
    expect(page.locator("fieldset.collapse summary")).to_have_text(
        "Zoho sync: Failed, needs a person · not in Zoho yet · 1 attempt")
    form_bottom = page.locator("#customer_form").bounding_box()
    history = page.locator("#sync-history h2").bounding_box()
    assert history["y"] >= form_bottom["y"] + form_bottom["height"] and history["height"] < 60, (form_bottom, history)
    wide |= too_wide(page, "record", screenshot_dir)
    page.click("fieldset.collapse summary")  # opened, the section's fields (the whole error among them) fit too
    expect(page.locator("fieldset.collapse .field-last_sync_error")).to_contain_text("organization_id=10234695")
    wide |= too_wide(page, "record-sync-open", screenshot_dir)

    # Every other list of the admin, and an invoice's page (its lines inline), fit too.
    looked_at = {"syncfailure", "synclog", "syncrun", "zohoevent", "customer"}
    for model in admin.site._registry:
        if model._meta.app_label == "zoho_sync" and model._meta.model_name not in looked_at:
            page.goto(f"{base}{reverse(f'admin:zoho_sync_{model._meta.model_name}_changelist')}")
            wide |= too_wide(page, f"list-{model._meta.model_name}", screenshot_dir)
    page.goto(f"{base}{reverse('admin:zoho_sync_invoice_change', args=[Invoice.objects.get().pk])}")
    wide |= too_wide(page, "invoice", screenshot_dir)

    assert wide == {}, f"pages wider than {VIEWPORT['width']} px: {wide}"
