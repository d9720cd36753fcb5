"""The daily rollup of the sync log (DailyMetric) and the views that read it."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, time, timedelta

from django.db.models import Count, Q, Sum
from django.utils import timezone

from monitoring.models import ALL, DailyMetric
from zoho_sync.entities import SPECS, for_api_resource
from zoho_sync.models import ApiUsage, SyncLog, SyncRun


def _p95(durations: list[int]) -> int | None:
    if not durations:
        return None
    ordered = sorted(durations)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def metrics_rollup_day(day: date) -> list[DailyMetric]:
    """(Re)compute one UTC day's rows from the sync log, API usage and runs; idempotent."""
    start = datetime.combine(day, time.min, tzinfo=UTC)
    end = start + timedelta(days=1)
    logs = SyncLog.objects.filter(created_at__gte=start, created_at__lt=end,
                                  status__in=(SyncLog.Status.SUCCESS, SyncLog.Status.FAILED))
    counts = {row["entity"]: row for row in logs.values("entity").order_by().annotate(
        attempts=Count("pk"), successes=Count("pk", filter=Q(status=SyncLog.Status.SUCCESS)),
        failures=Count("pk", filter=Q(status=SyncLog.Status.FAILED)))}
    calls: dict[str, int] = {}
    for endpoint, n in ApiUsage.objects.filter(day=day).values_list("endpoint").annotate(n=Sum("calls")):
        resource = endpoint.split(" ", 1)[-1].strip("/").split("/")[0]
        spec = for_api_resource(resource)  # the entity whose calls use that API path
        entity = spec.name if spec is not None else None
        if entity:
            calls[entity] = calls.get(entity, 0) + n
        calls[ALL] = calls.get(ALL, 0) + n
    runs = SyncRun.objects.filter(started_at__gte=start, started_at__lt=end).aggregate(
        throttled=Sum("rate_limited"), waited=Sum("budget_wait_seconds"))
    complete = end <= timezone.now()
    rows = []
    for entity in [spec.name for spec in SPECS] + [ALL]:
        row = counts.get(entity, {}) if entity != ALL else {
            key: sum(r[key] for r in counts.values()) for key in ("attempts", "successes", "failures")}
        durations = list((logs if entity == ALL else logs.filter(entity=entity))
                         .exclude(duration_ms__isnull=True).values_list("duration_ms", flat=True))
        values = {"attempts": row.get("attempts", 0), "successes": row.get("successes", 0),
                  "failures": row.get("failures", 0),
                  "avg_ms": round(sum(durations) / len(durations)) if durations else None,
                  "p95_ms": _p95(durations), "api_calls": calls.get(entity, 0), "complete": complete,
                  "rate_limited": (runs["throttled"] or 0) if entity == ALL else 0,
                  "budget_wait_seconds": round(runs["waited"] or 0.0, 3) if entity == ALL else 0.0}
        metric, _ = DailyMetric.objects.update_or_create(day=day, entity=entity, defaults=values)
        rows.append(metric)
    return rows


def metrics_rollup(*, days: int = 14, today: date | None = None) -> int:
    """Roll up the last `days` UTC days that are not complete yet (today is always recomputed); return how many."""
    today = today or timezone.now().astimezone(UTC).date()
    done = set(DailyMetric.objects.filter(complete=True, entity=ALL, day__gt=today - timedelta(days=days))
               .values_list("day", flat=True))
    rolled = 0
    for offset in range(days):
        day = today - timedelta(days=offset)
        if day not in done:
            metrics_rollup_day(day)
            rolled += 1
    return rolled


def metrics_days(*, days: int = 14, entity: str = ALL) -> list[DailyMetric]:
    """The rolled-up rows of the last `days` days for one entity (or all), newest first: no raw log is read."""
    today = timezone.now().astimezone(UTC).date()
    return list(DailyMetric.objects.filter(entity=entity, day__gt=today - timedelta(days=days)).order_by("-day"))


def sync_log_prune(*, older_than_days: int, batch_size: int = 5000, dry_run: bool = False) -> tuple[int, datetime, int]:
    """Delete sync-log rows older than `older_than_days` (whole UTC days), in batches, after rolling up every day it
    deletes so the metrics keep what the log loses. Returns (rows deleted, or that would be; the cutoff; days)."""
    cutoff = (timezone.now().astimezone(UTC) - timedelta(days=older_than_days)).replace(
        hour=0, minute=0, second=0, microsecond=0)
    old = SyncLog.objects.filter(created_at__lt=cutoff)
    if dry_run:
        return old.count(), cutoff, 0
    oldest = old.order_by("created_at").values_list("created_at", flat=True).first()
    first = oldest.astimezone(UTC).date() if oldest else cutoff.date()
    days = [first + timedelta(days=n) for n in range((cutoff.date() - first).days)]
    rolled = set(DailyMetric.objects.filter(entity=ALL, complete=True, day__in=days).values_list("day", flat=True))
    for day in days:
        if day not in rolled:
            metrics_rollup_day(day)
    deleted = 0
    while pks := list(old.order_by("pk").values_list("pk", flat=True)[:batch_size]):
        deleted += SyncLog.objects.filter(pk__in=pks)._raw_delete(SyncLog.objects.db)
    return deleted, cutoff, len(days)
