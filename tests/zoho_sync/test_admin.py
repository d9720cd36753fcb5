"""Every admin page renders for a superuser; search, filters, actions and inline validation work."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group
from django.urls import reverse
from django.utils import timezone
from django_q.models import OrmQ, Schedule, Task

from tests.builders import make_credit_note, make_customer, make_invoice, make_package, make_payment, make_service
from zoho_sync.models import (
    ApiUsage,
    Customer,
    DriftReport,
    FailedSyncLog,
    Invoice,
    SyncFailure,
    SyncLog,
    SyncRun,
    SyncStatus,
    ZohoEvent,
)

pytestmark = pytest.mark.django_db

READ_ONLY = {SyncLog, FailedSyncLog, SyncRun, ApiUsage, SyncFailure, ZohoEvent, DriftReport}


@pytest.fixture
def one_of_each():
    invoice = make_invoice(service=make_service())
    make_payment(invoice=invoice, amount=Decimal("5.00"))
    make_credit_note(invoice=invoice, amount=Decimal("2.00"))
    SyncLog.objects.create(entity="customer", object_pk=str(invoice.customer_id), action="create", status="failed",
                           message="Email address 'x' is not valid.", error_kind="invalid_data")
    Customer.objects.filter(pk=invoice.customer_id).update(
        sync_status=SyncStatus.FAILED, last_sync_error="Email address 'x' is not valid.",
        last_error_kind="invalid_data")
    ApiUsage.objects.create(day=timezone.now().date(), organization_id="1", endpoint="GET /customers", calls=3)
    DriftReport.objects.create(entities="customer", drift=1, text="customer: 1 difference", report={"drift": 1})
    ZohoEvent.objects.create(event_id="ev-1", event_type="payment_thankyou", source="webhook", state="quarantined",
                             payload={"event_id": "ev-1", "data": {"payment": {"payment_id": "1"}}},
                             last_error="ValueError: the event's data.payment has no payment_id")
    SyncRun.objects.create(run_id="b" * 32, kind="backfill", entities="customer", counts={"customer": {"created": 1}})
    # Other apps' admin pages are part of the dashboard too (django-q2's schedules and task results).
    Group.objects.create(name="operations")
    Schedule.objects.create(name="zoho: test", func="zoho_sync.tasks.backfill", args="'customer'")
    now = timezone.now()
    for ok in (True, False):
        Task.objects.create(id=f"task-{ok}", name=f"task-{ok}", func="math.floor", started=now, stopped=now,
                            success=ok)
    OrmQ.objects.create(key="zoho_sync", payload="x", lock=None)


def admin_url(model, view, *args):
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


@pytest.mark.parametrize("model", list(admin.site._registry), ids=lambda m: m._meta.label)
def test_every_admin_page_renders(admin_client, admin_user, rf, one_of_each, model):
    assert admin_client.get(admin_url(model, "changelist")).status_code == 200
    obj = model._default_manager.first()
    assert obj is not None, f"no {model._meta.label} row to open"
    change = admin_client.get(admin_url(model, "change", obj.pk))
    if model is SyncFailure:  # a failed record's page is the record's own page
        assert change.status_code == 302 and change.url == admin_url(Customer, "change", obj.record_id)
    else:
        assert change.status_code == 200
    request = rf.get("/")
    request.user = admin_user
    can_add = admin.site._registry[model].has_add_permission(request)
    if model._meta.app_label == "zoho_sync":
        assert can_add is (model not in READ_ONLY)
    expected_add = 200 if can_add else 403
    assert admin_client.get(admin_url(model, "add")).status_code == expected_add


def test_admin_index_and_dashboard_root(admin_client):
    response = admin_client.get("/", follow=True)
    assert response.status_code == 200
    assert b"Zoho Billing sync" in response.content


def test_search_by_account_number_email_and_zoho_id(admin_client):
    make_customer(account_number="CT-2025-00002", email="findme@example.com", zoho_id="903000000000777")
    make_customer(account_number="CT-2025-00003")
    for term in ("CT-2025-00002", "findme@example.com", "903000000000777"):
        response = admin_client.get(admin_url(Customer, "changelist"), {"q": term})
        assert list(response.context["cl"].result_list.values_list("account_number", flat=True)) == ["CT-2025-00002"]


def test_a_service_is_found_by_the_label_messages_use(admin_client):
    """Failure messages and Zoho's reference_id name a service CS-<id>; the search finds it by that name."""
    from zoho_sync.models import CustomerService

    wanted, other = make_service(), make_service()
    for term in (f"CS-{wanted.pk}", f"cs-{wanted.pk}", f" CS-{wanted.pk} "):
        response = admin_client.get(admin_url(CustomerService, "changelist"), {"q": term})
        assert [s.pk for s in response.context["cl"].result_list] == [wanted.pk], term
    response = admin_client.get(admin_url(CustomerService, "changelist"), {"q": other.customer.account_number})
    assert [s.pk for s in response.context["cl"].result_list] == [other.pk], "the other searches still work"


def test_filters_by_sync_status_and_account_type(admin_client):
    make_customer(account_number="CT-2025-00010", account_type="internal_test")
    failed = make_customer(account_number="CT-2025-00011")
    Customer.objects.filter(pk=failed.pk).update(sync_status=SyncStatus.FAILED, last_sync_error="Zoho said no")
    response = admin_client.get(admin_url(Customer, "changelist"), {"sync_status__exact": "failed"})
    assert [c.pk for c in response.context["cl"].result_list] == [failed.pk]
    assert b"Zoho said no" in response.content  # the error shows on hover over the status badge
    response = admin_client.get(admin_url(Customer, "changelist"), {"account_type__exact": "internal_test"})
    assert [c.account_number for c in response.context["cl"].result_list] == ["CT-2025-00010"]


def test_bookkeeping_fields_are_read_only(admin_client):
    customer = make_customer()
    response = admin_client.get(admin_url(Customer, "change", customer.pk))
    form_fields = response.context["adminform"].form.fields
    assert "zoho_id" not in form_fields and "sync_status" not in form_fields
    assert "email" in form_fields


def test_queue_for_sync_action(admin_client):
    customer = make_customer()
    Customer.objects.filter(pk=customer.pk).update(sync_status=SyncStatus.FAILED, sync_attempts=4)
    response = admin_client.post(
        admin_url(Customer, "changelist"),
        {"action": "mark_for_sync", admin.helpers.ACTION_CHECKBOX_NAME: [customer.pk]},
        follow=True,
    )
    assert any(m.message.startswith("1 record(s) queued for sync with Zoho:") for m in response.context["messages"])
    customer.refresh_from_db()
    assert (customer.sync_status, customer.sync_attempts) == (SyncStatus.PENDING, 0)


def invoice_form(customer, total, lines):
    data = {
        "invoice_number": "INV-ADMIN-1", "customer": customer.pk, "kind": "manual", "origin": "local",
        "status": "issued", "issued_on": "2026-11-01", "currency_code": "USD",
        "subtotal": total, "tax_total": "0.00", "total": total, "notes": "",
        "lines-TOTAL_FORMS": str(len(lines)), "lines-INITIAL_FORMS": "0",
        "lines-MIN_NUM_FORMS": "0", "lines-MAX_NUM_FORMS": "1000",
    }
    for i, (qty, price) in enumerate(lines):
        data.update({f"lines-{i}-position": str(i + 1), f"lines-{i}-description": f"Item {i}",
                     f"lines-{i}-quantity": qty, f"lines-{i}-unit_price": price})
    return data


def test_invoice_whose_total_disagrees_with_its_lines_is_refused(admin_client):
    customer = make_customer()
    response = admin_client.post(admin_url(Invoice, "add"), invoice_form(customer, "30.00", [("1", "10.00")]))
    assert response.status_code == 200
    assert "The subtotal 30.00 does not match the sum of the lines (10.00)." in response.content.decode()
    assert not Invoice.objects.exists()
    response = admin_client.post(admin_url(Invoice, "add"),
                                 invoice_form(customer, "30.00", [("1", "10.00"), ("2", "10.00")]))
    assert response.status_code == 302
    assert Invoice.objects.get().lines.count() == 2


def test_payment_over_balance_is_refused_in_the_admin(admin_client):
    invoice = make_invoice(lines=((Decimal("1"), Decimal("20.00")),))
    response = admin_client.post(admin_url(invoice.payments.model, "add"), {
        "reference": "PAY-ADMIN-1", "customer": invoice.customer_id, "invoice": invoice.pk, "amount": "25.00",
        "currency_code": "USD", "method": "cash", "status": "completed", "paid_at_0": "2026-11-02",
        "paid_at_1": "10:00:00", "notes": "",
    })
    assert response.status_code == 200
    assert "is larger than the balance of invoice" in response.content.decode()


def test_sync_log_cannot_be_edited_through_the_admin(admin_client):
    entry = SyncLog.objects.create(entity="customer", object_pk="1", action="create", status="success")
    response = admin_client.post(admin_url(SyncLog, "change", entry.pk), {"message": "edited"})
    assert response.status_code == 403
    assert admin_client.post(admin_url(SyncLog, "delete", entry.pk), {"post": "yes"}).status_code == 403
    assert SyncLog.objects.get(pk=entry.pk).message == ""


def test_package_admin_lists_price(admin_client):
    make_package(name="Fiber Ultra", plan_code="FIBER-ULTRA", price=Decimal("99.90"))
    response = admin_client.get(admin_url(make_package().__class__, "changelist"))
    assert b"FIBER-ULTRA" in response.content and b"99.90" in response.content


def test_push_now_action_pushes_and_reports(admin_client, zoho_settings, zoho_sandbox):
    zoho_sandbox.configure(per_minute=0)
    good, bad = make_customer(), make_customer(email="not-an-email")
    response = admin_client.post(
        admin_url(Customer, "changelist"),
        {"action": "push_now", admin.helpers.ACTION_CHECKBOX_NAME: [good.pk, bad.pk]},
        follow=True,
    )
    texts = [str(m.message) for m in response.context["messages"]]
    assert "1 record(s) pushed to Zoho." in texts
    assert any("1 record(s) failed" in t and "syncfailure" in t for t in texts)
    good.refresh_from_db()
    assert good.sync_status == SyncStatus.SYNCED and len(zoho_sandbox.records("customers")) == 1


def change_form_data(response) -> dict[str, str]:
    """What a browser posts back from a change page left as it is: the form's and every inline's current values."""
    from django.forms import CheckboxInput, MultiWidget

    forms = [response.context["adminform"].form]
    data = {}
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        forms += [formset.management_form, *formset.forms]
    for form in forms:
        for field in form:
            value, widget = field.value(), field.field.widget
            if isinstance(widget, MultiWidget):  # the split date and time of a date-time
                for i, part in enumerate(widget.decompress(value)):
                    data[f"{field.html_name}_{i}"] = "" if part is None else str(part)
            elif isinstance(widget, CheckboxInput):
                if value:
                    data[field.html_name] = "on"
            elif value is not None:
                data[field.html_name] = str(value)
    return data


@pytest.mark.parametrize(("make", "changes", "field", "message"), [
    (make_package, {"interval": "0"}, "interval", "The interval must be at least 1."),
    (lambda: make_service(reference="SVC-1"), {"quantity": "0"}, "quantity", "The quantity must be at least 1."),
    (make_invoice, {"period_start": "2026-11-01", "period_end": "2026-10-31"}, "period_end",
     "The period ends before it starts."),
], ids=["package-interval", "service-quantity", "invoice-period"])
def test_a_value_only_a_constraint_refused_is_explained_on_the_change_form(admin_client, make, changes, field,
                                                                            message):
    """The database constraints behind these have a clean() check, so the form names the field in words instead of
    "Constraint “...” is violated."."""
    obj = make()
    url = admin_url(type(obj), "change", obj.pk)
    data = change_form_data(admin_client.get(url))
    assert admin_client.post(url, data).status_code == 302, "the page as it is saves"
    response = admin_client.post(url, {**data, **changes})
    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {field: [message]}
    page = response.content.decode()
    assert message in page and "is violated" not in page
