"""Delete old sync-log rows in batches, only for days the daily metrics already hold."""

from __future__ import annotations

from datetime import UTC, timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from monitoring.metrics import metrics_rollup_day
from monitoring.models import ALL, DailyMetric
from zoho_sync.models import SyncLog

BATCH = 5000


class Command(BaseCommand):
    help = ("Delete sync-log rows older than --older-than days, in batches of --batch-size; each day is rolled up "
            "into the daily metrics first, so the metrics keep what the log loses.")

    def add_arguments(self, parser):
        parser.add_argument("--older-than", type=int, required=True, help="Days of log to keep (at least 1).")
        parser.add_argument("--batch-size", type=int, default=BATCH)
        parser.add_argument("--dry-run", action="store_true")

    def handle(self, *args, older_than, batch_size, dry_run, **options):
        if older_than < 1 or batch_size < 1:
            raise CommandError("--older-than and --batch-size must be at least 1.")
        cutoff = (timezone.now().astimezone(UTC) - timedelta(days=older_than)).replace(
            hour=0, minute=0, second=0, microsecond=0)
        old = SyncLog.objects.filter(created_at__lt=cutoff)
        oldest = old.order_by("created_at").values_list("created_at", flat=True).first()
        days = [] if dry_run or oldest is None else [
            oldest.astimezone(UTC).date() + timedelta(days=n)
            for n in range((cutoff.date() - oldest.astimezone(UTC).date()).days)]
        rolled = set(DailyMetric.objects.filter(entity=ALL, complete=True, day__in=days)
                     .values_list("day", flat=True))
        for day in days:
            if day not in rolled:
                metrics_rollup_day(day)  # the metrics keep the day before its rows go
        if dry_run:
            self.stdout.write(f"Would delete {old.count()} sync-log rows older than {cutoff:%Y-%m-%d} (UTC).")
            return
        deleted = 0
        while True:
            pks = list(old.order_by("pk").values_list("pk", flat=True)[:batch_size])
            if not pks:
                break
            deleted += SyncLog.objects.filter(pk__in=pks)._raw_delete(SyncLog.objects.db)
        self.stdout.write(f"Deleted {deleted} sync-log rows older than {cutoff:%Y-%m-%d} (UTC) in batches of "
                          f"{batch_size}; the daily metrics keep {len(days)} days of them.")
