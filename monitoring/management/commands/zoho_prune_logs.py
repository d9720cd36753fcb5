"""Delete old sync-log rows in batches, only for days the daily metrics already hold."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from monitoring.metrics import sync_log_prune

BATCH = 5000


class Command(BaseCommand):
    help = ("Delete sync-log rows older than --older-than days, in batches of --batch-size; each day is rolled up "
            "into the daily metrics first, so the metrics keep what the log loses. Exit 0: pruned (or, with "
            "--dry-run, counted); 1: bad arguments.")

    def add_arguments(self, parser):
        parser.add_argument("--older-than", type=int, required=True, help="Days of log to keep (at least 1).")
        parser.add_argument("--batch-size", type=int, default=BATCH,
                            help=f"Rows deleted per batch (default {BATCH:,}).")
        parser.add_argument("--dry-run", action="store_true",
                            help="Count the rows that would be deleted; delete nothing (default: delete).")

    def handle(self, *args, older_than, batch_size, dry_run, **options):
        if older_than < 1 or batch_size < 1:
            raise CommandError("--older-than and --batch-size must be at least 1.")
        count, cutoff, days = sync_log_prune(older_than_days=older_than, batch_size=batch_size, dry_run=dry_run)
        if dry_run:
            self.stdout.write(f"Would delete {count} sync-log rows older than {cutoff:%Y-%m-%d} (UTC).")
            return
        self.stdout.write(f"Deleted {count} sync-log rows older than {cutoff:%Y-%m-%d} (UTC) in batches of "
                          f"{batch_size}; the daily metrics keep {days} days of them.")
