"""`/metrics` in Prometheus' text format (the official prometheus_client), read from the database at each scrape,
so teams that already run Prometheus and Grafana watch and alert with what they have. Off unless
MONITORING_PROMETHEUS_ENABLED; optionally behind HTTP basic credentials."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Sum
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily

from monitoring.checks import DEGRADED, HEALTHY, OK, UNHEALTHY, health_run
from monitoring.heartbeat import cluster_last_seen
from monitoring.metrics import metrics_days
from zoho_sync import selectors
from zoho_sync.conf import get_zoho_limits
from zoho_sync.entities import SPECS
from zoho_sync.models import SyncRun
from zoho_sync.models.runs import DEAD_AFTER

STATUS_VALUE = {HEALTHY: 0, DEGRADED: 1, UNHEALTHY: 2}


class SyncCollector:
    """Everything a scrape reports, read fresh: record states, today's rollup, the API budget, runs, the cheap
    health checks."""

    def collect(self):
        records = GaugeMetricFamily("zoho_sync_records", "Records by entity and sync state.",
                                    labels=["entity", "state"])
        for entity, states in selectors.sync_state_counts().items():
            for state, n in states.items():
                records.add_metric([entity, state], n)
        yield records

        attempts = GaugeMetricFamily("zoho_sync_attempts_today", "Sync attempts today (UTC), by entity and outcome.",
                                     labels=["entity", "outcome"])
        average = GaugeMetricFamily("zoho_sync_duration_seconds_avg_today", "Average sync time today (UTC).",
                                    labels=["entity"])
        p95 = GaugeMetricFamily("zoho_sync_duration_seconds_p95_today", "95th-percentile sync time today (UTC).",
                                labels=["entity"])
        for spec in SPECS:
            today = next(iter(metrics_days(days=1, entity=spec.name)), None)
            attempts.add_metric([spec.name, "success"], today.successes if today else 0)
            attempts.add_metric([spec.name, "failure"], today.failures if today else 0)
            if today and today.avg_ms is not None:
                average.add_metric([spec.name], today.avg_ms / 1000)
                p95.add_metric([spec.name], today.p95_ms / 1000)
        yield from (attempts, average, p95)

        limits = get_zoho_limits()
        start = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
        yield GaugeMetricFamily("zoho_sync_api_calls_today", "Zoho API calls today (UTC).",
                                value=selectors.api_calls_today())
        yield GaugeMetricFamily("zoho_sync_api_daily_limit", "The configured daily quota (ZOHO_DAILY_LIMIT).",
                                value=limits.daily_limit)
        yield GaugeMetricFamily("zoho_sync_rate_limited_today", "Answers of HTTP 429 today, from the runs.",
                                value=SyncRun.objects.filter(started_at__gte=start).aggregate(
                                    n=Sum("rate_limited"))["n"] or 0)
        running = SyncRun.objects.filter(status=SyncRun.Status.RUNNING)
        dead = running.filter(heartbeat_at__lt=timezone.now() - DEAD_AFTER).count()
        runs = GaugeMetricFamily("zoho_sync_runs", "Runs now running, and dead ones.", labels=["state"])
        runs.add_metric(["running"], running.count() - dead)
        runs.add_metric(["dead"], dead)
        yield runs
        seen = cluster_last_seen()
        yield GaugeMetricFamily("zoho_sync_cluster_heartbeat_age_seconds",
                                "Seconds since the django-q2 cluster's heartbeat ran (absent: never).",
                                value=(timezone.now() - seen) / timedelta(seconds=1) if seen else float("nan"))

        report = health_run(cheap_only=True)
        yield GaugeMetricFamily("zoho_sync_health_status", "0 healthy, 1 degraded, 2 unhealthy (cheap checks).",
                                value=STATUS_VALUE[report.status])
        ok = GaugeMetricFamily("zoho_sync_check_ok", "1 when the check is ok.", labels=["category", "check"])
        for result in report.results:
            ok.add_metric([result.category, result.name], 1 if result.status == OK else 0)
        yield ok
