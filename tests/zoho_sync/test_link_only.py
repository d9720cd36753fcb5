"""zoho_backfill --link-only against the sandbox: customers typed into Zoho by hand (our account number in another
case and spacing, no account number but the same email in another case, another email) are linked, an ambiguous
match is held for a person, nothing is created or changed in Zoho, and the next ordinary backfill updates what was
linked instead of creating it again."""

from __future__ import annotations

import importlib
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from tests.builders import make_customer, make_package, make_service
from tests.zoho_sync.test_commands import run
from zoho_sync import services
from zoho_sync.models import (
    Customer,
    CustomerService,
    ServicePackage,
    SyncFailure,
    SyncLog,
    SyncRun,
    SyncState,
    SyncStatus,
)
from zoho_sync.sync.link import AMBIGUOUS, link_existing
from zoho_sync.sync.specs import CUSTOMER, SPECS

pytestmark = pytest.mark.django_db


def zoho_customer(customer_id: str, display_name: str, email: str, **fields) -> dict:
    return {"customer_id": customer_id, "display_name": display_name, "email": email, **fields}


@pytest.fixture
def book(zoho):
    """Ours, and what a person typed into Zoho before the integration existed."""
    already = make_customer(account_number="CT-2025-20000", email="linked@example.com")
    services.sync_object(entity="customer", pk=already.pk)  # in Zoho through us: already linked
    ours = {
        "by_key": make_customer(account_number="CT-2025-20001", email="ava@example.com"),
        "by_email": make_customer(account_number="CT-2025-20002", email="bob@bakery.example"),
        "in_step": make_customer(account_number="CT-2025-20003", email="cy@example.com", first_name="Cy",
                                 last_name="Exact"),
        "ambiguous": make_customer(account_number="CT-2025-20004", email="shared@example.com"),
        "missing": make_customer(account_number="CT-2025-20005", email="dee@example.com"),
    }
    zoho.seed("customers", [
        # Our account number typed in lower case, with spaces, in a hand-typed name; another email entirely.
        zoho_customer("9100001", "ACME corp ( ct-2025-20001 )", "accounts@acme.example"),
        # No account number, another name, the same email in another case.
        zoho_customer("9100002", "Bob's Bakery", "BOB@Bakery.example"),
        # Exactly what we would send.
        zoho_customer("9100003", "Cy Exact (CT-2025-20003)", "cy@example.com", first_name="Cy", last_name="Exact",
                      currency_code="USD"),
        # Two customers with one email: which one is ours is a person's call.
        zoho_customer("9100004", "Shared Household", "shared@example.com"),
        zoho_customer("9100005", "Shared Household (2)", "Shared@Example.com"),
        # Someone else entirely, and one whose email matches ours but who carries another of our account numbers.
        zoho_customer("9100006", "Stranger Things Ltd", "stranger@example.com"),
        zoho_customer("9100007", "Dee's Other (CT-2025-29999)", "dee@example.com"),
    ])
    return already, ours


def snapshot(zoho) -> tuple[dict, int]:
    return dict(zoho.state()["counts"]), len(zoho.requests())


def writes_since(zoho, since: int) -> list[dict]:
    return [r for r in zoho.requests()[since:] if r.get("api_path") and r["method"] != "GET"]


def test_link_only_links_by_key_and_email_holds_the_ambiguous_and_creates_nothing(book, zoho, monkeypatch):
    already, ours = book
    counts, since = snapshot(zoho)

    code, text = run("zoho_backfill", monkeypatch, link_only=True)

    assert code == 2, text  # one ambiguous record is left for a person
    assert writes_since(zoho, since) == [] and zoho.state()["counts"] == counts, "nothing sent to Zoho but reads"
    get = lambda key: Customer.objects.get(pk=ours[key].pk)  # noqa: E731
    assert (get("by_key").zoho_id, get("by_key").sync_status, get("by_key").sync_fingerprint) == (
        "9100001", SyncStatus.PENDING, "")
    assert (get("by_email").zoho_id, get("by_email").sync_status) == ("9100002", SyncStatus.PENDING)
    assert (get("in_step").zoho_id, get("in_step").sync_status) == ("9100003", SyncStatus.SYNCED)
    held = get("ambiguous")
    assert held.zoho_id is None and held.sync_state == SyncState.NEEDS_PERSON
    assert held.last_sync_error.startswith(AMBIGUOUS) and "9100004" in held.last_sync_error \
        and "9100005" in held.last_sync_error
    missing = get("missing")
    assert missing.zoho_id is None and missing.sync_status == SyncStatus.PENDING, \
        "9100007 shares its email but carries another account number: not a candidate"
    assert Customer.objects.get(pk=already.pk).zoho_id not in {"9100001", "9100002", "9100003"}

    #                              in Zoho, by key, by email, settled, already, ambiguous, not in Zoho, left
    assert lines_of(text)["customer"] == ["8", "2", "1", "0", "1", "1", "1", "0"], text
    assert "customer CT-2025-20004 <shared@example.com>" in text and 'customer 9100005 "Shared Household (2)"' \
        in text
    links = SyncLog.objects.filter(action=SyncLog.Action.LINK)
    assert sorted(links.values_list("object_repr", "status")) == [
        ("CT-2025-20001", "success"), ("CT-2025-20002", "success"), ("CT-2025-20003", "success"),
        ("CT-2025-20004", "failed")]

    # The ordinary backfill that follows updates what was linked, creates only what Zoho lacks, holds the rest.
    since = len(zoho.requests())
    services.sync_pending(entity="customers")
    writes = [(r["method"], r["api_path"]) for r in writes_since(zoho, since)]
    assert sorted(writes) == [("POST", "/customers"), ("PUT", "/customers/9100001"), ("PUT", "/customers/9100002")]
    assert zoho.state()["counts"]["customers"] == counts["customers"] + 1  # the missing one, once
    assert zoho.records("customers")[1]["display_name"].endswith("(CT-2025-20001)"), "brought up to date"
    assert get("ambiguous").sync_state == SyncState.NEEDS_PERSON

    # Even a retry of the failures a person asks for never creates the held record.
    since = len(zoho.requests())
    services.sync_retry_failed(entity="customers", include_validation=True)
    assert writes_since(zoho, since) == [] and get("ambiguous").last_sync_error.startswith(AMBIGUOUS)

    # A rerun changes nothing and writes nothing.
    rows = SyncLog.objects.count()
    code, text = run("zoho_backfill", monkeypatch, link_only=True)
    assert code == 2 and SyncLog.objects.count() == rows, text
    assert lines_of(text)["customer"] == ["9", "0", "0", "0", "5", "1", "0", "0"], text


def lines_of(text: str) -> dict[str, list[str]]:
    """The summary table's rows (the entity's name at the start of a line), by entity."""
    names = {spec.name for spec in SPECS}
    return {line.split()[0]: line.split()[1:] for line in text.splitlines() if line.split()[:1] and
            line.split()[0] in names and not line.startswith(" ")}


def test_settling_an_ambiguous_record_by_hand_or_in_zoho(book, zoho, monkeypatch):
    _, ours = book
    run("zoho_backfill", monkeypatch, link_only=True)
    held = ours["ambiguous"]
    code, text = run("zoho_backfill", monkeypatch, link_only=True, settle=["customers:CT-2025-20004=9100005"])
    assert code == 0, text
    held.refresh_from_db()
    assert (held.zoho_id, held.sync_status, held.last_sync_error) == ("9100005", SyncStatus.PENDING, "")
    since = len(zoho.requests())
    services.sync_pending(entity="customers")
    assert sorted((r["method"], r["api_path"]) for r in writes_since(zoho, since)) == [
        ("POST", "/customers"), ("PUT", "/customers/9100001"), ("PUT", "/customers/9100002"),
        ("PUT", "/customers/9100005")]  # the three linked brought up to date, the missing one created


def test_an_ambiguity_settled_in_zoho_links_on_the_next_run(book, zoho, monkeypatch):
    _, ours = book
    run("zoho_backfill", monkeypatch, link_only=True)
    zoho.delete_record("customers", "9100005")  # a person removed the duplicate in Zoho
    code, text = run("zoho_backfill", monkeypatch, link_only=True)
    assert code == 0, text
    held = Customer.objects.get(pk=ours["ambiguous"].pk)
    assert (held.zoho_id, held.sync_status) == ("9100004", SyncStatus.PENDING)


def test_settled_as_new_is_created_by_the_next_backfill(book, zoho, monkeypatch):
    _, ours = book
    run("zoho_backfill", monkeypatch, link_only=True)
    code, text = run("zoho_backfill", monkeypatch, link_only=True, settle=["customers:CT-2025-20004=new"])
    assert code == 0, text
    held = Customer.objects.get(pk=ours["ambiguous"].pk)
    assert held.zoho_id is None and held.sync_status == SyncStatus.PENDING
    services.sync_pending(entity="customers")
    held.refresh_from_db()
    assert held.zoho_id and held.zoho_id not in {"9100004", "9100005"} and held.sync_status == SyncStatus.SYNCED


def test_dry_run_says_what_would_be_linked_and_writes_nothing(book, zoho, monkeypatch):
    counts, since = snapshot(zoho)
    rows = SyncLog.objects.count()
    before = list(Customer.objects.order_by("pk").values_list("zoho_id", "sync_status", "last_sync_error"))
    code, text = run("zoho_backfill", monkeypatch, link_only=True, dry_run=True, verbosity=2)
    assert code == 2, text
    assert text.startswith("Dry run: nothing is written here") and "3 would be linked" in text
    assert "would be linked customer CT-2025-20002 -> 9100002 (by email)" in text
    assert "would be held" in text and "candidate customer 9100005" in text
    assert list(Customer.objects.order_by("pk").values_list("zoho_id", "sync_status", "last_sync_error")) == before
    assert SyncLog.objects.count() == rows and writes_since(zoho, since) == [] and zoho.state()["counts"] == counts


def test_one_zoho_customer_matched_by_two_of_ours_links_neither(zoho):
    one = make_customer(account_number="CT-2025-30001", email="family@example.com")
    two = make_customer(account_number="CT-2025-30002", email="family@example.com")
    zoho.seed("customers", [zoho_customer("9200001", "The Family", "family@example.com")])
    report = link_existing(specs=(CUSTOMER,))
    assert [item.label for item in report.ambiguous] == ["CT-2025-30001", "CT-2025-30002"]
    assert "matches several of ours" in report.ambiguous[0].reason
    assert not Customer.objects.filter(pk__in=[one.pk, two.pk], zoho_id__isnull=False).exists()


def test_key_and_email_pointing_at_different_customers_is_ambiguous(zoho):
    ours = make_customer(account_number="CT-2025-40001", email="eve@example.com")
    zoho.seed("customers", [zoho_customer("9300001", "Eve (CT-2025-40001)", "old@example.com"),
                            zoho_customer("9300002", "Eve's Shop", "eve@example.com")])
    report = link_existing(specs=(CUSTOMER,))
    assert [item.candidates for item in report.ambiguous] == [
        ['customer 9300001 "Eve (CT-2025-40001)" <old@example.com>', 'customer 9300002 "Eve\'s Shop" '
                                                                      '<eve@example.com>']]
    ours.refresh_from_db()
    assert ours.zoho_id is None


def test_a_record_claimed_by_a_worker_is_left_alone(zoho):
    from datetime import timedelta

    from django.utils import timezone

    busy = make_customer(account_number="CT-2025-50001", email="busy@example.com")
    Customer.objects.filter(pk=busy.pk).update(claimed_by="other:1:run", claimed_until=timezone.now() +
                                               timedelta(minutes=5), sync_status=SyncStatus.SYNCING)
    zoho.seed("customers", [zoho_customer("9400001", "Busy (CT-2025-50001)", "busy@example.com")])
    report = link_existing(specs=(CUSTOMER,))
    assert [item.label for item in report.entities["customer"].left] == ["CT-2025-50001"]
    busy.refresh_from_db()
    assert busy.zoho_id is None


def test_plans_and_subscriptions_link_by_their_keys(zoho):
    package = make_package(plan_code="FIBER-LINK")
    service = make_service(package=package, customer=make_customer(account_number="CT-2025-60001"))
    customer = service.customer
    zoho.seed("customers", [zoho_customer("9500001", f"Hand typed ({customer.account_number})", customer.email)])
    product = zoho.seed("products", [{"name": "Fiber by hand"}])[0]
    zoho.seed("plans", [{"plan_code": "fiber-link", "name": "Fiber (typed)", "recurring_price": 1,
                         "product_id": product["product_id"], "interval": 1, "interval_unit": "months"}])
    zoho.seed("subscriptions", [{"customer_id": "9500001", "plan": {"plan_code": "fiber-link"},
                                 "reference_id": service.zoho_reference_id}])
    counts, since = snapshot(zoho)
    report = link_existing(specs=SPECS[:3])
    assert writes_since(zoho, since) == [] and zoho.state()["counts"] == counts
    assert {name: len(e.linked) for name, e in report.entities.items()} == {
        "customer": 1, "service_package": 1, "customer_service": 1}
    assert ServicePackage.objects.get(pk=package.pk).zoho_id == "fiber-link"
    assert CustomerService.objects.get(pk=service.pk).zoho_id


def test_a_thousand_customers_cost_five_reads(zoho, monkeypatch):
    """Matching reads Zoho's list pages (200 a call), never one search per record."""
    Customer.objects.bulk_create([Customer(account_number=f"CT-2026-{n:05d}", email=f"c{n}@example.com",
                                           first_name="Bulk", last_name=f"N{n}") for n in range(1000)])
    zoho.seed("customers", [zoho_customer(str(9600000 + n), f"Typed by hand {n}", f"C{n}@Example.com")
                            for n in range(1000)])
    since = len(zoho.requests())
    code, text = run("zoho_backfill", monkeypatch, link_only=True, entity="customers")
    assert code == 0, text
    reads = [r for r in zoho.requests()[since:] if r.get("api_path")]
    assert len(reads) == 5 and {(r["method"], r["api_path"]) for r in reads} == {("GET", "/customers")}
    assert "5 API calls" in text and lines_of(text)["customer"] == ["1000", "0", "1000", "0", "0", "0", "0", "0"]
    assert Customer.objects.filter(zoho_id__isnull=False).count() == 1000


def test_arguments(zoho, monkeypatch):
    code, text = run("zoho_backfill", monkeypatch, link_only=True, limit=5)
    assert code == 1 and "--limit does not apply to --link-only" in text
    code, text = run("zoho_backfill", monkeypatch, settle=["customers:CT-1=1"])
    assert code == 1 and "use it with --link-only" in text
    code, text = run("zoho_backfill", monkeypatch, link_only=True, settle=["CT-1=1"])
    assert code == 1 and "write ENTITY:LABEL=ZOHO_ID" in text
    code, text = run("zoho_backfill", monkeypatch, link_only=True, workers=3)
    assert code == 0 and "--workers is ignored" in text


def test_the_hold_is_on_the_record_and_survives_pruning_the_log_and_a_local_save(book, zoho, monkeypatch,
                                                                                  admin_client):
    _, ours = book
    run("zoho_backfill", monkeypatch, link_only=True)
    held = Customer.objects.get(pk=ours["ambiguous"].pk)
    assert held.link_hold.startswith(AMBIGUOUS) and held.link_hold == held.last_sync_error
    assert "9100004" in held.link_hold and "9100005" in held.link_hold
    assert SyncFailure.objects.filter(entity="customer", record_id=held.pk, last_error_kind="validation").exists()

    # The retention prune deletes the link rows that used to be the only record of the hold.
    SyncLog.objects.update(created_at=timezone.now() - timedelta(days=100))
    call_command("zoho_prune_logs", older_than=90, stdout=StringIO())
    assert not SyncLog.objects.exists()
    # A person edits the record: it is due again, but still held.
    held.first_name = "Edited"
    held.save()
    held.refresh_from_db()
    assert held.sync_status == SyncStatus.PENDING and held.link_hold.startswith(AMBIGUOUS)

    since = len(zoho.requests())
    services.sync_pending(entity="customers")  # creates the missing one, and tries the held one
    held.refresh_from_db()
    assert held.zoho_id is None and held.sync_state == SyncState.NEEDS_PERSON
    assert held.last_sync_error == held.link_hold and held.last_error_kind == "validation"
    assert SyncFailure.objects.filter(entity="customer", record_id=held.pk).exists(), "still a failed record"
    services.sync_retry_failed(entity="customers", include_validation=True)
    response = admin_client.post(reverse("admin:zoho_sync_customer_push", args=[held.pk]), follow=True)
    assert "1 record(s) failed" in " ".join(str(m.message) for m in response.context["messages"])
    page = admin_client.get(reverse("admin:zoho_sync_customer_change", args=[held.pk])).content.decode()
    assert 'id="sync-error"' in page and "Candidates: customer 9100004" in page
    creates = [r for r in writes_since(zoho, since) if r["method"] == "POST"]
    assert len(creates) == 1 and "CT-2025-20005" in str(creates[0]), "only the missing one: the held never created"
    assert not [c for c in zoho.records("customers") if "CT-2025-20004" in str(c)]
    assert Customer.objects.get(pk=held.pk).link_hold == held.link_hold

    # Settling it is what lifts the hold.
    code, text = run("zoho_backfill", monkeypatch, link_only=True, settle=["customers:CT-2025-20004=9100004"])
    assert code == 0, text
    held.refresh_from_db()
    assert (held.zoho_id, held.link_hold) == ("9100004", "")


def test_the_record_page_shows_the_hold_after_a_local_save(book, zoho, monkeypatch, admin_client):
    _, ours = book
    run("zoho_backfill", monkeypatch, link_only=True)
    held = Customer.objects.get(pk=ours["ambiguous"].pk)
    held.first_name = "Edited"
    held.save()  # the error is history now ("changed since the last failure"); the hold is not
    page = admin_client.get(reverse("admin:zoho_sync_customer_change", args=[held.pk])).content.decode()
    banner = page[page.index('id="sync-banner"'):page.index('id="sync-history"')]
    assert 'id="link-hold"' in banner and "Candidates: customer 9100004" in banner
    fieldset = page[page.index("field-link_hold"):]
    assert "readonly" in fieldset[:600] and "<textarea" not in fieldset[:600], "read-only on the record page"


def test_settled_as_new_clears_the_hold_even_after_a_local_save(book, zoho, monkeypatch):
    _, ours = book
    run("zoho_backfill", monkeypatch, link_only=True)
    held = Customer.objects.get(pk=ours["ambiguous"].pk)
    held.first_name = "Edited"
    held.save()
    code, text = run("zoho_backfill", monkeypatch, link_only=True, settle=["customers:CT-2025-20004=new"])
    assert code == 0, text
    held.refresh_from_db()
    assert (held.link_hold, held.sync_status) == ("", SyncStatus.PENDING)
    services.sync_pending(entity="customers")
    held.refresh_from_db()
    assert held.zoho_id not in (None, "9100004", "9100005") and held.sync_status == SyncStatus.SYNCED


def test_a_link_run_is_a_sync_run_with_its_counts(book, zoho, monkeypatch):
    since = len(zoho.requests())
    code, text = run("zoho_backfill", monkeypatch, link_only=True, entity="customers")
    run_row = SyncRun.objects.get(kind=SyncRun.Kind.LINK)
    assert run_row.run_id in text and code == run_row.exit_code == 2
    assert (run_row.status, run_row.entities, run_row.records) == ("unsettled", "customer", 5)
    assert run_row.counts == {"customer": {"in_zoho": 8, "linked_by_key": 2, "linked_by_email": 1, "already": 1,
                                           "needs_person": 1, "not_in_zoho": 1}}
    assert run_row.unsettled == {"needs_person": 1} and run_row.finished_at and not run_row.is_dead
    assert run_row.api_calls == len([r for r in zoho.requests()[since:] if r.get("api_path")]) == 1
    assert set(SyncLog.objects.filter(action=SyncLog.Action.LINK).values_list("run_id", flat=True)) == {
        run_row.run_id}

    code, text = run("zoho_backfill", monkeypatch, link_only=True, settle=["customers:CT-2025-20004=9100005"])
    settled = SyncRun.objects.filter(kind=SyncRun.Kind.LINK).exclude(pk=run_row.pk).get()
    assert (code, settled.status, settled.exit_code, settled.unsettled) == (0, "settled", 0, {})
    assert settled.counts["customer"]["settled"] == 1

    run("zoho_backfill", monkeypatch, link_only=True, dry_run=True)
    assert SyncRun.objects.filter(kind=SyncRun.Kind.LINK).count() == 2, "a dry run writes no run"


def test_a_link_run_stopped_by_an_unreadable_list_is_recorded_as_stopped(book, zoho, monkeypatch):
    zoho.fail_next("GET", "/customers", status=403)
    code, text = run("zoho_backfill", monkeypatch, link_only=True)
    assert code == 2 and "Reading Zoho's lists failed" in text
    stopped = SyncRun.objects.get(kind=SyncRun.Kind.LINK)
    assert (stopped.status, stopped.exit_code) == ("stopped", 2) and stopped.finished_at
    assert stopped.stop_reason.startswith("Reading Zoho's lists failed") and stopped.api_calls == 1


def test_migration_0014_carries_the_logs_holds_over_to_the_records(zoho):
    """Before 0014 a hold was only a failed latest link row in the sync log: the migration puts it on the row."""
    from django.apps import apps

    hold_what_the_log_holds = importlib.import_module(
        "zoho_sync.migrations.0014_link_hold_and_link_runs").hold_what_the_log_holds
    held, settled, linked = (make_customer() for _ in range(3))
    Customer.objects.filter(pk=linked.pk).update(zoho_id="9700001")

    def link_row(obj, status, message):
        SyncLog.objects.create(entity="customer", object_pk=str(obj.pk), action=SyncLog.Action.LINK, status=status,
                               message=message)

    link_row(held, "failed", f"{AMBIGUOUS} first")
    link_row(held, "failed", f"{AMBIGUOUS} latest")
    link_row(settled, "failed", f"{AMBIGUOUS} old")
    link_row(settled, "skipped", "Settled by a person")
    link_row(linked, "failed", f"{AMBIGUOUS} old")
    hold_what_the_log_holds(apps, None)
    assert dict(Customer.objects.values_list("pk", "link_hold")) == {
        held.pk: f"{AMBIGUOUS} latest", settled.pk: "", linked.pk: ""}
