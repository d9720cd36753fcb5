"""Failed records as records, the record page (banner, push button, history, Zoho link), retry controls and the
"Can sync to Zoho" permission, through the admin's real views (CSRF on where it says so)."""

from __future__ import annotations

import re

import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse
from django_q.models import OrmQ

from tests.builders import make_customer, make_invoice, make_payment, make_service
from zoho_sync import services
from zoho_sync.admin.base import CappedPaginator
from zoho_sync.models import Customer, SyncFailure, SyncLog, SyncStatus

pytestmark = pytest.mark.django_db
FAILURES = "/admin/zoho_sync/syncfailure/"
CHECKBOX = admin.helpers.ACTION_CHECKBOX_NAME


def change_url(obj):
    opts = obj._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])


def push_url(obj):
    opts = obj._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_push", args=[obj.pk])


def messages_of(response) -> list[str]:
    return [str(m.message) for m in response.context["messages"]]


@pytest.fixture
def viewer(django_user_model):
    """A staff member who may look at everything and change records, but not sync to Zoho."""
    user = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    codenames = ["view_syncfailure", "view_synclog", "view_customer", "change_customer",
                 "view_customerservice", "view_apiusage"]
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def operator(django_user_model):
    """The same staff member with "Can sync to Zoho"."""
    user = django_user_model.objects.create_user("operator", password="pw", is_staff=True)
    codenames = ["view_syncfailure", "view_synclog", "view_customer", "change_customer", "sync_to_zoho"]
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    client = Client()
    client.force_login(user)
    return client


def fail(obj, error="Email address 'x' is not valid.", kind="invalid_data", attempts=1, retry_at=None,
         status=SyncStatus.FAILED):
    type(obj).objects.filter(pk=obj.pk).update(sync_status=status, last_sync_error=error, last_error_kind=kind,
                                               sync_attempts=attempts, next_retry_at=retry_at)
    obj.refresh_from_db()
    return obj


def failed_log(obj, entity="customer", n=1):
    for attempt in range(1, n + 1):
        SyncLog.objects.create(entity=entity, object_pk=str(obj.pk), object_repr=str(obj), action="create",
                               status="failed", attempt=attempt, message="Email address 'x' is not valid.",
                               error_kind="invalid_data")


def test_one_row_per_failed_record_however_many_attempts(admin_client):
    customer = fail(make_customer(), attempts=7)
    failed_log(customer, n=7)
    blocked = [fail(make_service(customer=customer), error="Blocked by customer", kind="dependency",
                    status=SyncStatus.BLOCKED) for _ in range(2)]
    fine = make_customer()
    Customer.objects.filter(pk=fine.pk).update(sync_status=SyncStatus.SYNCED)

    page = admin_client.get(FAILURES)
    rows = page.context["cl"].result_list
    assert sorted(row.id for row in rows) == sorted([f"customer:{customer.pk}",
                                                    *(f"customer_service:{s.pk}" for s in blocked)])
    assert page.context["cl"].result_count == 3
    html = page.content.decode()
    assert html.count(f">{customer.account_number}</a>") == 1
    row = next(row for row in rows if row.entity == "customer")
    assert row.blocks == {"customer_service": 2}
    assert "2 customer service" in html  # what it holds up
    assert change_url(customer) in html  # a link to the record
    assert f"?entity=customer&amp;object_pk={customer.pk}" in html  # and to its sync-log history
    assert "Invalid local data" in html and "Email address" in html
    # The per-attempt view stays as the log: seven rows.
    log = admin_client.get("/admin/zoho_sync/failedsynclog/")
    assert log.context["cl"].result_count == 7
    history = admin_client.get(f"/admin/zoho_sync/synclog/?entity=customer&object_pk={customer.pk}")
    assert history.context["cl"].result_count == 7


def test_failures_filter_by_entity_state_and_search(admin_client):
    person = fail(make_customer())
    retrying = fail(make_customer(), kind="server", error="Zoho answered 503", retry_at="2099-01-01T00:00:00Z")
    service = fail(make_service(), kind="validation", error="Plan not found")

    def ids(**params):
        return sorted(r.id for r in admin_client.get(FAILURES, params).context["cl"].result_list)

    assert ids(entity="customer") == sorted([f"customer:{person.pk}", f"customer:{retrying.pk}"])
    assert ids(state="retrying") == [f"customer:{retrying.pk}"]
    assert ids(state="needs_person") == sorted([f"customer:{person.pk}", f"customer_service:{service.pk}"])
    assert ids(q=f"CS-{service.pk}") == [f"customer_service:{service.pk}"]
    assert ids(q="503") == [f"customer:{retrying.pk}"]


def test_retry_now_pushes_a_fixed_record(admin_client, zoho_settings, zoho_sandbox):
    zoho_sandbox.configure(per_minute=0)
    customer = make_customer(email="not-an-email")
    services.sync_object(entity="customer", pk=customer.pk)
    assert SyncFailure.objects.filter(pk=f"customer:{customer.pk}").exists()
    Customer.objects.filter(pk=customer.pk).update(email="fixed@example.com")  # fixed behind the sync's back
    response = admin_client.post(FAILURES, {"action": "retry_now", CHECKBOX: [f"customer:{customer.pk}"]},
                                 follow=True)
    assert "1 record(s) pushed to Zoho." in messages_of(response)
    assert Customer.objects.get(pk=customer.pk).sync_status == SyncStatus.SYNCED
    assert not SyncFailure.objects.exists()
    assert [c["email"] for c in zoho_sandbox.records("customers")] == ["fixed@example.com"]


def test_a_large_selection_is_queued_and_says_no_cluster_runs(admin_client, settings):
    settings.SYNC_TRIGGERS_ENABLED = True
    customers = [fail(make_customer()) for _ in range(services.PUSH_NOW_LIMIT + 1)]
    OrmQ.objects.all().delete()
    response = admin_client.post(FAILURES, {"action": "retry_now",
                                            CHECKBOX: [f"customer:{c.pk}" for c in customers]}, follow=True)
    texts = messages_of(response)
    assert f"{len(customers)} records queued; they are pushed in the background." in texts
    assert any(t.startswith("No django-q2 cluster is running: the queued pushes will wait") for t in texts)
    assert OrmQ.objects.count() == len(customers)
    assert Customer.objects.filter(sync_status=SyncStatus.PENDING).count() == len(customers)


def test_skip_stops_pushing_and_says_who(operator):
    customer = fail(make_customer())
    response = operator.post(FAILURES, {"action": "skip_selected", CHECKBOX: [f"customer:{customer.pk}"]},
                             follow=True)
    assert any(t.startswith("1 record(s) skipped") for t in messages_of(response))
    customer.refresh_from_db()
    assert customer.sync_status == SyncStatus.SKIPPED
    assert customer.last_sync_error.startswith("Skipped by operator on ")
    log = SyncLog.objects.get(entity="customer", object_pk=str(customer.pk), status="skipped")
    assert log.message == customer.last_sync_error
    assert not SyncFailure.objects.exists()


def test_retry_all_asks_first_then_queues(operator):
    fail(make_customer())
    fail(make_customer(), kind="server", retry_at="2099-01-01T00:00:00Z")
    url = reverse("admin:zoho_sync_syncfailure_retry_all")
    confirm = operator.get(url, {"entity": "customer"})
    assert confirm.status_code == 200
    assert confirm.context["rows"] == [{"entity": "customer", "needs_person": 1, "retrying": 1, "waiting": 0,
                                        "blocked": 0}]
    assert not OrmQ.objects.exists()  # asking changes nothing
    done = operator.post(url, {"entity": "customer", "confirm": "yes", "include_validation": "on"}, follow=True)
    assert any("Queued a retry of every failure of customer" in t for t in messages_of(done))
    queued = OrmQ.objects.get()
    assert queued.func() == "zoho_sync.tasks.retry_entity" and tuple(queued.args()) == ("customer", True)
    # The action on selected rows leads to the same confirmation page.
    row = SyncFailure.objects.first()
    chosen = operator.post(FAILURES, {"action": "retry_all", CHECKBOX: [row.pk]})
    assert chosen.status_code == 302 and chosen.url == f"{url}?entity=customer"


def test_without_the_permission_nothing_changes_by_form_or_url(viewer, zoho_settings):
    customer = fail(make_customer())
    page = viewer.get(FAILURES)
    assert page.status_code == 200
    assert page.context["action_form"] is None  # no action is offered at all
    assert b"retry-all-link" not in page.content
    for action in ("retry_now", "skip_selected", "retry_all"):
        viewer.post(FAILURES, {"action": action, CHECKBOX: [f"customer:{customer.pk}"]})
    record_page = viewer.get(change_url(customer))
    assert b"push-to-zoho" not in record_page.content and b"sync-banner" in record_page.content
    form = viewer.get("/admin/zoho_sync/customer/").context["action_form"]
    assert form is None or not {"push_now", "mark_for_sync", "skip_selected"} & {
        name for name, _ in form.fields["action"].choices}
    viewer.post("/admin/zoho_sync/customer/", {"action": "push_now", CHECKBOX: [customer.pk]})
    assert viewer.post(push_url(customer)).status_code == 403
    retry_all = reverse("admin:zoho_sync_syncfailure_retry_all")
    assert viewer.get(retry_all).status_code == 403
    assert viewer.post(retry_all, {"confirm": "yes"}).status_code == 403
    assert viewer.get("/admin/dashboard/").status_code == 200
    customer.refresh_from_db()
    assert (customer.sync_status, customer.zoho_id) == (SyncStatus.FAILED, None)
    assert not OrmQ.objects.exists() and not SyncLog.objects.filter(status="skipped").exists()


def test_a_staff_member_without_any_sync_permission_sees_no_dashboard(django_user_model):
    user = django_user_model.objects.create_user("nobody", password="pw", is_staff=True)
    client = Client()
    client.force_login(user)
    assert client.get("/admin/dashboard/").status_code == 403
    assert client.get(FAILURES).status_code == 403


def test_csrf_is_enforced_on_every_action(django_user_model):
    user = django_user_model.objects.create_superuser("csrf", password="pw")
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    customer = fail(make_customer())
    assert client.post(push_url(customer)).status_code == 403
    assert client.post(FAILURES, {"action": "skip_selected", CHECKBOX: [f"customer:{customer.pk}"]}).status_code == 403
    assert client.post(reverse("admin:zoho_sync_syncfailure_retry_all"), {"confirm": "yes"}).status_code == 403
    assert client.post("/admin/zoho_sync/customer/", {"action": "push_now", CHECKBOX: [customer.pk]}).status_code == 403
    customer.refresh_from_db()
    assert customer.sync_status == SyncStatus.FAILED and not OrmQ.objects.exists()
    # With the page's token the same form works.
    page = client.get(change_url(customer))
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode()).group(1)
    skipped = client.post(FAILURES, {"action": "skip_selected", CHECKBOX: [f"customer:{customer.pk}"],
                                     "csrfmiddlewaretoken": token})
    assert skipped.status_code == 302
    assert Customer.objects.get(pk=customer.pk).sync_status == SyncStatus.SKIPPED


def test_record_page_banner_history_push_button_and_zoho_link(operator, zoho_settings, zoho_sandbox):
    zoho_sandbox.configure(per_minute=0)
    zoho_settings.ZOHO_DATA_CENTER = "eu"
    customer = make_customer(email="not-an-email")
    services.sync_object(entity="customer", pk=customer.pk)
    page = operator.get(change_url(customer)).content.decode()
    banner = page[page.index('id="sync-banner"'):page.index('id="sync-history"')]
    assert "Failed, needs a person" in banner and "Invalid local data" in banner
    assert "Email address &#x27;not-an-email&#x27; is not valid." in banner
    assert "not in Zoho yet" in banner and 'id="push-to-zoho"' in banner
    history = page[page.index('id="sync-history"'):]
    assert history.count("<tr class=\"history-failed\">") == 1

    # A person fixes the record, then pushes it from its page.
    Customer.objects.filter(pk=customer.pk).update(email="ok@example.com")
    pushed = operator.post(push_url(customer), follow=True)
    assert "1 record(s) pushed to Zoho." in messages_of(pushed)
    customer.refresh_from_db()
    assert customer.sync_status == SyncStatus.SYNCED
    page = pushed.content.decode()
    org = zoho_settings.ZOHO_ORGANIZATION_ID
    assert f"https://billing.zoho.eu/app/{org}#/customers/{customer.zoho_id}" in page
    assert "Synced" in page[page.index('id="sync-banner"'):] and 'class="sync-banner-error"' not in page
    assert page.count('<tr class="history-success">') == 1


def test_saving_a_record_says_its_push_waits_for_a_cluster(admin_client, settings):
    settings.SYNC_TRIGGERS_ENABLED = True
    customer = make_customer()
    form = {f: getattr(customer, f) for f in ("account_number", "email", "first_name", "last_name", "account_type",
                                              "status", "currency_code")}
    response = admin_client.post(change_url(customer), {**form, "company_name": "Renamed Ltd"}, follow=True)
    texts = messages_of(response)
    assert any(t.startswith("Its push to Zoho is queued") for t in texts)
    assert any(t.startswith("No django-q2 cluster is running: the push will wait") for t in texts)


@pytest.mark.parametrize("label", ["account", "email", "zoho", "cs", "invoice", "payment", "partial"])
def test_search_by_the_labels_the_product_prints(admin_client, label):
    customer = make_customer(account_number="CT-2025-77777", email="Searched@Example.com")
    Customer.objects.filter(pk=customer.pk).update(zoho_id="903000000077777")
    service = make_service(customer=customer)
    invoice = make_invoice(customer=customer, invoice_number="INV-SEARCH-1")
    payment = make_payment(invoice=invoice, reference="PAY-SEARCH-1")
    make_customer(), make_service(), make_invoice(), make_payment()  # noise
    cases = {
        "account": ("customer", "ct-2025-77777", customer),
        "email": ("customer", "searched@example.com", customer),
        "zoho": ("customer", "903000000077777", customer),
        "cs": ("customerservice", f"cs-{service.pk}", service),
        "invoice": ("invoice", "INV-SEARCH-1", invoice),
        "payment": ("payment", "PAY-SEARCH-1", payment),
        "partial": ("customer", "77777", customer),  # no exact match: the partial search still finds it
    }
    model, term, expected = cases[label]
    found = admin_client.get(f"/admin/zoho_sync/{model}/", {"q": term}).context["cl"].result_list
    assert [obj.pk for obj in found] == [expected.pk]


def test_sync_log_search_resolves_a_label_to_the_records_rows(admin_client):
    customer = make_customer(account_number="CT-2025-55555")
    other = make_customer()
    failed_log(customer, n=2)
    failed_log(other, n=3)
    found = admin_client.get("/admin/zoho_sync/synclog/", {"q": "CT-2025-55555"}).context["cl"].result_list
    assert len(found) == 2 and {log.object_pk for log in found} == {str(customer.pk)}


def test_changelists_show_state_and_short_error(admin_client):
    customer = fail(make_customer(), error="Zoho says: " + "the email domain does not accept mail " * 5)
    html = admin_client.get("/admin/zoho_sync/customer/").content.decode()
    assert "Failed, needs a person" in html
    short = re.search(r'<span class="sync-error" title="[^"]*">([^<]*)</span>', html).group(1)
    assert short.startswith("Zoho says: the email domain") and len(short) <= 60
    assert customer.last_sync_error.strip() in html  # the whole error is its tooltip


def test_big_changelists_count_at_most_the_cap(admin_client, monkeypatch):
    monkeypatch.setattr(CappedPaginator, "CAP", 5)
    for _ in range(8):
        make_customer()
    page = admin_client.get("/admin/zoho_sync/customer/")
    assert page.context["cl"].result_count == 5
    assert "More than 5 customers" in page.content.decode()
    few = admin_client.get("/admin/zoho_sync/customer/", {"q": "CT-2025"}).context["cl"]
    assert few.result_count == 5 and few.paginator.capped


def test_api_usage_per_day_against_the_quota(admin_client, settings):
    from django.utils import timezone

    from zoho_sync.models import ApiUsage

    settings.ZOHO_DAILY_LIMIT = 2000
    today = timezone.now().date()
    ApiUsage.objects.create(day=today, organization_id="1", endpoint="POST /customers", calls=300)
    ApiUsage.objects.create(day=today, organization_id="1", endpoint="GET /customers", calls=200)
    html = admin_client.get("/admin/zoho_sync/apiusage/").content.decode()
    assert f"<td>{today:%Y-%m-%d}</td><td>500</td><td>25.0%</td>" in html
    assert "15.0%" in html and "10.0%" in html  # each endpoint's share of the day's quota
    assert "2,000 a day" in html
