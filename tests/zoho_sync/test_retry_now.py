"""After an outage, one `zoho_retry_failed` pushes every retrying record now (exit 0), or prints each record it could
not settle with why; the counts it prints are the dashboard's. It once pushed nothing after an outage and exited 2
("1 failed, retrying") twice with no reason: records whose triggered push was queued, with a cluster beating, were
left to that push."""

from __future__ import annotations

import re
from io import StringIO

import pytest
from django.core.management import call_command, load_command_class
from django.core.management.base import CommandError
from django.utils import timezone

from monitoring.heartbeat import beat
from tests.builders import make_customer, make_invoice
from zoho_sync.client import codes
from zoho_sync.models import Customer, Invoice, SyncState, SyncStatus
from zoho_sync.services import sync_pending
from zoho_sync.zoho import get_zoho_client

pytestmark = pytest.mark.django_db

STATES = list(SyncState.values)


@pytest.fixture
def outage(zoho, settings):
    """The sandbox failing every API call (HTTP 500), the token already minted; no client-side retries, so a
    failure is the record's at once."""
    settings.ZOHO_RETRY_MAX_ATTEMPTS = 1
    get_zoho_client().get("/customers")
    zoho.configure(error_rate=1.0)
    return zoho


def retry_failed(monkeypatch) -> tuple[int, str]:
    """`manage.py zoho_retry_failed` as from the command line: its exit code and everything it printed."""
    monkeypatch.setattr(type(load_command_class("zoho_sync", "zoho_retry_failed")), "_called_from_command_line",
                        True, raising=False)
    out = StringIO()
    try:
        call_command("zoho_retry_failed", stdout=out, stderr=out)
    except CommandError as error:
        return error.returncode, f"{out.getvalue()}\n{error}"
    except SystemExit as exit:
        return exit.code, out.getvalue()
    return 0, out.getvalue()


def printed_counts(text: str) -> dict[str, dict[str, int]]:
    """The command's closing table ("Every record in scope now"): entity -> state -> records."""
    table = text[text.index("Every record in scope now"):].splitlines()[2:]
    counts = {}
    for line in table:
        cells = line.split()
        if len(cells) != len(STATES) + 1 or not all(c.isdigit() for c in cells[1:]):
            break
        counts[cells[0]] = dict(zip(STATES, map(int, cells[1:]), strict=True))
    return counts


def dashboard_counts(client, entity: str) -> dict[str, int]:
    html = client.get("/admin/dashboard/").content.decode()
    card = html[html.index(f'id="card-{entity}"'):]
    card = card[:card.index("</table>")]

    def cell(name: str) -> str:
        return re.sub(r"<[^>]+>", "", re.search(rf'class="{name}">(.*?)</td>', card, re.S).group(1))

    waiting, blocked = (int(n) for n in re.findall(r"\d+", cell("n-waiting")))
    failed = [int(n) for n in re.findall(r"\d+", cell("n-failed"))]
    return {"total": int(cell("n-total").replace(",", "")), "synced": int(cell("n-synced").replace(",", "")),
            "pending": int(cell("n-pending").replace(",", "")), "waiting": waiting, "blocked": blocked,
            "failed": failed[0], "needs_person": failed[1] if len(failed) > 1 else 0}


def assert_dashboard_agrees(client, printed: dict[str, dict[str, int]]) -> None:
    for entity in ("customer", "invoice"):
        states = printed[entity]
        assert dashboard_counts(client, entity) == {
            "total": sum(states.values()), "synced": states[SyncState.SYNCED],
            "pending": states[SyncState.PENDING], "waiting": states[SyncState.WAITING],
            "blocked": states[SyncState.BLOCKED],
            "failed": states[SyncState.RETRYING] + states[SyncState.NEEDS_PERSON],
            "needs_person": states[SyncState.NEEDS_PERSON]}, entity


def test_after_an_outage_one_retry_pushes_every_retrying_record_now(outage, monkeypatch, admin_client):
    customers = [make_customer() for _ in range(3)]
    invoices = [make_invoice(customer=c) for c in customers[:2]]
    sync_pending()
    assert {c.sync_state for c in Customer.objects.all()} == {SyncState.RETRYING}
    assert {i.sync_state for i in Invoice.objects.all()} == {SyncState.WAITING}
    # As in the morning story: a cluster beats, and a push of one record was queued during the outage.
    beat()
    Customer.objects.filter(pk=customers[0].pk).update(push_queued_at=timezone.now())
    before = dashboard_counts(admin_client, "customer")
    assert before["failed"] == 3 and before["needs_person"] == 0

    outage.configure(error_rate=0.0)
    code, text = retry_failed(monkeypatch)

    assert code == 0, text
    assert "5 records in" in text, text
    assert {c.sync_status for c in Customer.objects.all()} == {SyncStatus.SYNCED}
    assert {i.sync_status for i in Invoice.objects.filter(pk__in=[i.pk for i in invoices])} == {SyncStatus.SYNCED}
    printed = printed_counts(text)
    assert printed["customer"][SyncState.SYNCED] == 3 and printed["invoice"][SyncState.SYNCED] == 2
    assert_dashboard_agrees(admin_client, printed)


def test_what_a_retry_cannot_settle_is_printed_record_by_record_with_why(outage, monkeypatch, admin_client):
    again = make_customer()  # fails again after the outage
    broken = make_customer(email="broken")  # our checks refuse it: needs a person
    fine = make_customer()
    waiting = make_invoice(customer=again)
    blocked = make_invoice(customer=broken)
    sync_pending()
    outage.configure(error_rate=0.0)
    outage.fail_next("POST", "/customers", status=500, code=codes.INTERNAL_ERROR)

    code, text = retry_failed(monkeypatch)

    assert code == 2, text
    assert Customer.objects.get(pk=fine.pk).sync_status == SyncStatus.SYNCED
    lines = {line.split(":")[0].strip(): line for line in text.splitlines() if line.startswith("  ")}
    line = next(v for k, v in lines.items() if k.startswith(f"customer {again.pk} "))
    assert "failed, retrying: pushed now and failed again (server). Next try at" in line and "Last error:" in line
    line = next(v for k, v in lines.items() if k.startswith(f"customer {broken.pk} "))
    assert "failed, needs a person: not retried" in line and "--include-validation" in line
    line = next(v for k, v in lines.items() if k.startswith(f"invoice {waiting.pk} "))
    assert "waiting for a dependency: pushed now; waits for a dependency" in line
    line = next(v for k, v in lines.items() if k.startswith(f"invoice {blocked.pk} "))
    assert "blocked by a dependency that needs a person: its dependency needs a person" in line
    assert not any(k.startswith(f"customer {fine.pk} ") for k in lines), "a settled record is not listed"
    assert_dashboard_agrees(admin_client, printed_counts(text))
