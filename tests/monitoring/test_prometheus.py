"""/metrics: off by default, Prometheus' text format when on, behind basic credentials when set."""

from __future__ import annotations

import base64

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.builders import make_customer
from zoho_sync.models import ApiUsage, Customer, SyncStatus

pytestmark = pytest.mark.django_db


def samples(response) -> dict[tuple, float]:
    found = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_off_unless_enabled(client):
    assert client.get("/metrics").status_code == 404


def test_the_text_format_reports_states_budget_and_health(client, settings, healthy):
    from django.utils import timezone

    settings.MONITORING_PROMETHEUS_ENABLED = True
    settings.ZOHO_DAILY_LIMIT = 1000
    make_customer()
    make_customer()
    Customer.objects.filter(pk=Customer.objects.first().pk).update(sync_status=SyncStatus.FAILED)
    ApiUsage.objects.create(day=timezone.now().date(), organization_id="1", endpoint="GET /customers", calls=42)
    response = client.get("/metrics")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/plain")
    values = samples(response)
    assert values[("zoho_sync_records", (("entity", "customer"), ("state", "needs_person")))] == 1
    assert values[("zoho_sync_records", (("entity", "customer"), ("state", "pending")))] == 1
    assert values[("zoho_sync_api_calls_today", ())] == 42 and values[("zoho_sync_api_daily_limit", ())] == 1000
    assert values[("zoho_sync_health_status", ())] == 1, "degraded: a record needs a person"
    assert values[("zoho_sync_check_ok", (("category", "Database sync status"), ("check", "records by state")))] == 0
    assert values[("zoho_sync_runs", (("state", "dead"),))] == 0


def test_credentials_when_set(client, settings, healthy):
    settings.MONITORING_PROMETHEUS_ENABLED = True
    settings.MONITORING_PROMETHEUS_USERNAME, settings.MONITORING_PROMETHEUS_PASSWORD = "prom", "s3cret-pass"
    denied = client.get("/metrics")
    assert denied.status_code == 401 and "Basic" in denied["WWW-Authenticate"]
    wrong = base64.b64encode(b"prom:nope").decode()
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Basic {wrong}").status_code == 401
    right = base64.b64encode(b"prom:s3cret-pass").decode()
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Basic {right}").status_code == 200
