"""Daily metrics rolled up from the sync log, runs and API usage; the 14-day view reads the rollup only; pruning
keeps the rollup."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from monitoring.metrics import metrics_days, metrics_rollup, metrics_rollup_day
from monitoring.models import ALL, DailyMetric
from zoho_sync.entities import SPECS
from zoho_sync.models import ApiUsage, SyncLog, SyncRun

pytestmark = pytest.mark.django_db


def logs(day, entity: str, status: str, durations: list[int]) -> None:
    at = datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(hours=10)
    rows = SyncLog.objects.bulk_create([SyncLog(entity=entity, object_pk=str(i), action="create", status=status,
                                                duration_ms=ms) for i, ms in enumerate(durations)])
    SyncLog.objects.filter(pk__in=[r.pk for r in rows]).update(created_at=at)


def test_a_day_rolls_up_per_entity_and_for_all():
    day = timezone.now().astimezone(UTC).date() - timedelta(days=2)
    logs(day, "customer", "success", list(range(100, 2000, 100)))  # 19 successes, 100..1900 ms
    logs(day, "customer", "failed", [5000])
    logs(day, "invoice", "success", [300])
    logs(day, "invoice", "skipped", [1])  # not an attempt
    ApiUsage.objects.create(day=day, organization_id="1", endpoint="POST /customers", calls=20)
    ApiUsage.objects.create(day=day, organization_id="1", endpoint="GET /products", calls=2)
    run = SyncRun.objects.create(run_id="e" * 32, kind="backfill", entities="customer", rate_limited=4,
                                 budget_wait_seconds=12.5)
    SyncRun.objects.filter(pk=run.pk).update(started_at=datetime.combine(day, datetime.min.time(), tzinfo=UTC))

    metrics_rollup_day(day)

    customer = DailyMetric.objects.get(day=day, entity="customer")
    assert (customer.attempts, customer.successes, customer.failures) == (20, 19, 1)
    assert customer.success_rate == 0.95 and customer.avg_ms == 1200 and customer.p95_ms == 1900
    assert customer.api_calls == 20 and customer.complete
    assert DailyMetric.objects.get(day=day, entity="service_package").api_calls == 2
    everything = DailyMetric.objects.get(day=day, entity=ALL)
    assert (everything.attempts, everything.api_calls, everything.rate_limited, everything.budget_wait_seconds) == (
        21, 22, 4, 12.5)
    metrics_rollup_day(day)
    assert DailyMetric.objects.filter(day=day).count() == len(SPECS) + 1, "idempotent: one row per entity and all"


def test_the_view_reads_the_rollup_not_the_log():
    today = timezone.now().astimezone(UTC).date()
    for offset in range(3):
        logs(today - timedelta(days=offset), "customer", "success", [100])
    assert metrics_rollup(days=14) == 14
    assert metrics_rollup(days=14) == 1, "complete days are not rolled up again; today is"
    with CaptureQueriesContext(connection) as queries:
        rows = metrics_days(days=14)
    assert len(queries) == 1 and "zoho_sync_synclog" not in queries[0]["sql"]
    assert [r.day for r in rows][:3] == [today - timedelta(days=n) for n in range(3)]
    assert not rows[0].complete and rows[1].complete


def test_the_command_prints_the_days_against_the_targets():
    today = timezone.now().astimezone(UTC).date()
    logs(today - timedelta(days=1), "customer", "success", [100] * 9)
    logs(today - timedelta(days=1), "customer", "failed", [100])
    out = StringIO()
    call_command("zoho_metrics", "--days", "3", "--entity", "customers", stdout=out)
    text = out.getvalue()
    assert "targets 98% success" in text and "90.0%" in text and "below target" in text
    assert "(today so far)" in text


def test_pruning_keeps_the_rollup_of_the_days_it_deletes():
    old_day = timezone.now().astimezone(UTC).date() - timedelta(days=40)
    logs(old_day, "customer", "success", [100, 200])
    logs(old_day, "customer", "failed", [300])
    recent = timezone.now().astimezone(UTC).date() - timedelta(days=1)
    logs(recent, "customer", "success", [100])
    out = StringIO()
    call_command("zoho_prune_logs", "--older-than", "30", "--dry-run", stdout=out)
    assert "Would delete 3 sync-log rows" in out.getvalue() and SyncLog.objects.count() == 4
    call_command("zoho_prune_logs", "--older-than", "30", "--batch-size", "2", stdout=out)
    assert SyncLog.objects.count() == 1, "only the old rows went"
    kept = DailyMetric.objects.get(day=old_day, entity="customer")
    assert (kept.attempts, kept.successes, kept.failures) == (3, 2, 1), "the rollup holds what the log lost"
    call_command("zoho_prune_logs", "--older-than", "30", stdout=out)
    assert DailyMetric.objects.get(day=old_day, entity="customer").attempts == 3, "a second prune keeps it"


def test_the_scheduled_rollup_and_pruning(settings):
    from monitoring import tasks

    settings.MONITORING_LOG_RETENTION_DAYS = 30
    old_day = timezone.now().astimezone(UTC).date() - timedelta(days=31)
    logs(old_day, "invoice", "success", [100])
    assert tasks.metrics_rollup_daily() == "rolled up 14 days"
    assert tasks.prune_logs_weekly().startswith("Deleted 1 sync-log rows")
    assert DailyMetric.objects.get(day=old_day, entity="invoice").successes == 1
