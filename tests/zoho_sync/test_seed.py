"""zoho_seed_demo and zoho_demo: deterministic, realistic data that obeys every rule of the models."""

from __future__ import annotations

import hashlib
import re
from decimal import Decimal
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import Count, Sum

from zoho_sync.models import Customer, CustomerService, Invoice, Payment, ServicePackage
from zoho_sync.validation import email_problem

pytestmark = pytest.mark.django_db
AS_OF = "2026-11-01"


def seed(*args) -> str:
    out = StringIO()
    call_command("zoho_seed_demo", *args, stdout=out)
    return out.getvalue()


def digest() -> str:
    h = hashlib.sha256()
    for model in (ServicePackage, Customer, CustomerService, Invoice, Payment):
        fields = [f.attname for f in model._meta.concrete_fields]
        for row in model.objects.order_by("pk").values_list(*fields):
            h.update(repr(row).encode())
    return h.hexdigest()


def test_same_seed_same_data_and_another_seed_other_data():
    seed("--customers", "120", "--seed", "7", "--as-of", AS_OF)
    first = digest()
    seed("--customers", "120", "--seed", "7", "--as-of", AS_OF, "--reset")
    assert digest() == first
    seed("--customers", "120", "--seed", "8", "--as-of", AS_OF, "--reset")
    assert digest() != first


def test_data_is_realistic_and_includes_the_awkward_cases():
    output = seed("--customers", "600", "--as-of", AS_OF)
    assert re.search(r"customers\s+600\n", output)
    customers = list(Customer.objects.all())
    assert all(c.email == "" or c.email.endswith("@example.com") or "example.com" in c.email for c in customers)
    assert sum(c.account_type == "internal_test" for c in customers) == 6
    invalid = [c for c in customers if email_problem(c.email)]
    assert 2 <= len(invalid) <= 5, "a couple of records with an invalid email, so failures can be seen"
    assert any(c.email == "" for c in customers)
    assert any(not c.name for c in customers), "a record with no name at all"
    assert {s.status for s in CustomerService.objects.all()} == {"active", "pending", "suspended", "cancelled"}
    kinds = dict(Invoice.objects.values_list("kind").annotate(n=Count("pk")).order_by())
    assert kinds["manual"] > 50 and kinds["subscription_period"] > 500
    assert Payment.objects.filter(invoice__isnull=True).exists(), "prepayments with no invoice become credit"
    assert ServicePackage.objects.filter(interval_unit="years").exists()


def test_seeded_rows_obey_the_models_rules():
    seed("--customers", "300", "--as-of", AS_OF)
    for invoice in Invoice.objects.prefetch_related("lines"):
        assert invoice.totals_problems() == [], invoice.invoice_number
        if invoice.kind == "subscription_period":
            assert invoice.service.customer_id == invoice.customer_id
    overpaid = (
        Invoice.objects.annotate(paid=Sum("payments__amount")).filter(paid__gt=0).values_list("total", "paid")
    )
    assert all(paid <= total for total, paid in overpaid)
    for service in CustomerService.objects.filter(status="active"):
        service.full_clean()
    sample = Payment.objects.filter(invoice__isnull=False, status="completed").first()
    sample.full_clean()
    assert Invoice.objects.filter(status="partially_paid").exists() and Invoice.objects.filter(status="paid").exists()
    assert all(i.total > Decimal("0") for i in Invoice.objects.all())


def test_existing_data_is_left_alone_without_reset():
    seed("--customers", "20", "--as-of", AS_OF)
    output = seed("--customers", "50", "--as-of", AS_OF)
    assert "already has 20 customers" in output
    assert Customer.objects.count() == 20


def test_bad_arguments():
    with pytest.raises(CommandError, match="at least 1"):
        call_command("zoho_seed_demo", customers=0)


@pytest.mark.django_db(transaction=True)
def test_demo_runs_the_main_job_against_a_local_sandbox(settings, tmp_path):
    settings.BASE_DIR = tmp_path  # the sandbox's state file goes to tmp_path/var
    settings.ZOHO_API_BASE_URL = "https://www.zohoapis.com/billing/v1"  # a real org in .env is never used
    out = StringIO()
    call_command("zoho_demo", customers=30, sandbox_port=0, stdout=out)
    text = out.getvalue()
    assert "ok     one read" in text and "127.0.0.1" in text
    run = re.search(r"\ncustomer\s+(\d+)\s+0\s+0\s+0\s+0\s+(\d+)\s+0\s+0\s+0\s+(\d+)\s+0\n", text)
    assert run, "the backfill's summary: customers created, failed for a person, none retrying or waiting"
    scope = re.search(r"\ncustomer\s+(2[0-9])\s+(\d+)\s+0\s+0\s+0\s+(\d+)\s+0\n", text)
    assert scope, "the summary's scope table: customers synced"
    health = re.search(r"\n  customer\s+(2[0-9])\s+(\d+)\s+0\s+0\s+0\s+(\d+)\s+0\n", text)
    assert health and health.groups() == scope.groups(), "the health lines tell the summary's story"
    assert int(run[1]) == int(scope[1]) and int(run[2]) == int(scope[2]) and int(run[3]) == int(scope[3])
    assert "Zoho sync health: DEGRADED" in text and "WARNING records by state" in text, "zoho_health_check's report"
    # Every skipped record explained by reason, in the backfill's summary and in the health lines, the counts adding
    # up to the "skipped" column.
    skipped_by_table = sum(int(row[1]) for row in re.findall(r"(?m)^  (\w+)(?: +\d+){5} +(\d+) +\d+$", text))
    why = re.search(r"\n  Why (\d+) are skipped \(by design: never pushed to Zoho\):\n((?:    .+\n)+)", text)
    assert why and int(why[1]) == skipped_by_table > 0, "the demo says why its skipped records are skipped"
    reasons = re.findall(r"    (\w+) (\d+): (.+)", why[2])
    assert sum(int(n) for _, n, _ in reasons) == skipped_by_table
    assert ("invoice", "Zoho bills subscription periods itself; pushing this invoice would bill the customer twice.") \
        in [(entity, reason) for entity, _, reason in reasons]
    in_summary = re.findall(r"\n {17}skipped (\d+): (.+)", text)
    assert sum(int(n) for n, _ in in_summary) == skipped_by_table, "the backfill's summary explains them too"
    assert "ok      token, organization, one read" in text, "Zoho was reachable when the health check ran"
    assert "http://127.0.0.1:8000/admin/" in text and "log in as 'admin' with password" in text
    assert (tmp_path / "var" / "sandbox-state.json").exists()
    assert Customer.objects.filter(sync_status="synced").count() >= 25
    out = StringIO()
    call_command("zoho_demo", customers=30, sandbox_port=0, stdout=out)
    assert "password shown on the first run" in out.getvalue() and "0 API calls" in out.getvalue()
    assert Customer.objects.count() == 30 and get_user_model().objects.get(username="admin").is_superuser
