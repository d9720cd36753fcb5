"""Push local records to Zoho in dependency order: all of them, or one entity; resumable at any point."""

from __future__ import annotations

from datetime import datetime

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from zoho_sync import services
from zoho_sync.conf import ZohoConfigurationError, get_zoho_limits
from zoho_sync.management.commands._sync_output import EXIT_HELP, ProgressPrinter, finish, quiet_record_logs, summary
from zoho_sync.sync import specs
from zoho_sync.sync.plan import plan_backfill


def since_date(value: str) -> datetime:
    try:
        return timezone.make_aware(datetime.fromisoformat(value))
    except ValueError:
        raise CommandError(f"--since {value!r} is not a date like 2025-01-31.") from None


class Command(BaseCommand):
    help = ("Push due records to Zoho (customers, plans, subscriptions, invoices, payments, in that order). "
            + EXIT_HELP)

    def add_arguments(self, parser):
        parser.add_argument("--entity", choices=[*specs.ENTITY_CHOICES, "all"], default="all")
        parser.add_argument("--dry-run", action="store_true", help="Say what would be sent, and the calls and "
                                                                   "time it needs; send nothing.")
        parser.add_argument("--batch-size", type=int, default=100, help="Records claimed at a time (adapts).")
        parser.add_argument("--limit", type=int, default=None, help="Stop after this many records.")
        parser.add_argument("--since", type=since_date, default=None, help="Only records changed since DATE.")
        parser.add_argument("--workers", type=int, default=None,
                            help="Worker processes pushing together (default SYNC_BACKFILL_WORKERS; 0 chooses: "
                                 "1 on SQLite, else one per CPU up to 4). Each has one call to Zoho in flight, so "
                                 "at most ZOHO_MAX_CONCURRENCY; each takes an even share of --limit.")

    def handle(self, *args, entity, dry_run, batch_size, limit, since, workers, **options):
        if batch_size < 1 or (limit is not None and limit < 1):
            raise CommandError("--batch-size and --limit must be at least 1.")
        workers = services.backfill_workers(workers)
        most = get_zoho_limits().max_concurrency
        if not 1 <= workers <= most:
            raise CommandError(f"--workers (or SYNC_BACKFILL_WORKERS) must be from 1 to {most} "
                               f"(ZOHO_MAX_CONCURRENCY: each worker has one call in flight), not {workers}.")
        chosen = specs.specs_for(entity)
        if dry_run:
            self.stdout.write(plan_backfill(specs=chosen, since=since).as_text(verbosity=options["verbosity"]))
            return
        if workers > 1:
            self.stdout.write(f"{workers} worker processes push together (--workers, SYNC_BACKFILL_WORKERS).")
        try:
            with quiet_record_logs(options["verbosity"]):
                report = services.sync_pending(entity=entity, limit=limit, batch_size=batch_size, since=since,
                                               on_progress=ProgressPrinter(self.stdout), workers=workers)
        except ZohoConfigurationError as exc:
            raise CommandError(str(exc)) from exc
        if report.resume_at:
            report.continuation = services.backfill_schedule_continuation(entity=entity, resume_at=report.resume_at)
        self.stdout.write(summary(report))
        finish(self, report, advice="See the failed syncs in the admin; fix what needs a person, then run "
                                    "`manage.py zoho_retry_failed --include-validation`.")
