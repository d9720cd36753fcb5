"""Push local records to Zoho in dependency order: all of them, or one entity; resumable at any point."""

from __future__ import annotations

from datetime import datetime

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from zoho_sync import entities, services
from zoho_sync.client.errors import ZohoError
from zoho_sync.conf import ZohoConfigurationError, get_zoho_limits
from zoho_sync.management.commands._sync_output import EXIT_HELP, ProgressPrinter, finish, quiet_record_logs, summary
from zoho_sync.management.exits import Unfinished
from zoho_sync.sync.link import link_existing
from zoho_sync.sync.plan import plan_backfill


def since_date(value: str) -> datetime:
    try:
        return timezone.make_aware(datetime.fromisoformat(value))
    except ValueError:
        raise CommandError(f"--since {value!r} is not a date like 2025-01-31.") from None


def settle_choice(value: str) -> tuple[tuple[str, str], str]:
    """--settle customers:CT-2025-00004=460000000012345 (or =new): ((spec name, label), Zoho id or "new")."""
    head, _, zoho_id = value.partition("=")
    entity, _, label = head.partition(":")
    spec = entities.ENTITY_CHOICES.get(entities.entity_name(entity))
    if spec is None or not label or not zoho_id.strip():
        raise CommandError(f"--settle {value!r}: write ENTITY:LABEL=ZOHO_ID (or =new), like "
                           "customers:CT-2025-00004=460000000012345.")
    return (spec.name, label.strip()), zoho_id.strip()


class Command(BaseCommand):
    help = ("Push due records to Zoho (customers, service_packages, customer_services, invoices, payments, in that "
            "order). "
            + EXIT_HELP)

    def add_arguments(self, parser):
        parser.add_argument("--entity", **entities.entity_argument(what="The records to push"))
        parser.add_argument("--dry-run", action="store_true", help="Say what would be sent, and the calls and "
                                                                   "time it needs; send nothing.")
        parser.add_argument("--batch-size", type=int, default=100,
                            help="Records claimed at a time (adapts; default 100).")
        parser.add_argument("--limit", type=int, default=None, help="Stop after this many records (default: no limit).")
        parser.add_argument("--since", type=since_date, default=None,
                            help="Only records changed since DATE, YYYY-MM-DD (default: any time).")
        parser.add_argument("--workers", type=int, default=None,
                            help="Worker processes pushing together (default SYNC_BACKFILL_WORKERS; 0 chooses: "
                                 "1 on SQLite, else one per CPU up to 4). Each has one call to Zoho in flight, so "
                                 "at most ZOHO_MAX_CONCURRENCY; each takes an even share of --limit.")
        parser.add_argument("--link-only", action="store_true",
                            help="Create nothing: link the records that never reached Zoho to the records Zoho "
                                 "already holds (by natural key; customers also by email), reading Zoho's lists "
                                 "(one call per 200 records); hold ambiguous matches for a person. With --dry-run, "
                                 "say what would be linked. --workers does not apply (one process reads the lists).")
        parser.add_argument("--settle", action="append", default=[], metavar="ENTITY:LABEL=ID",
                            help="With --link-only: link this record to this Zoho id (one of its candidates), or "
                                 "=new when none of them is it. Repeatable.")

    def handle(self, *args, entity, dry_run, batch_size, limit, since, workers, **options):
        if batch_size < 1 or (limit is not None and limit < 1):
            raise CommandError("--batch-size and --limit must be at least 1.")
        chosen = entities.specs_for(entity)
        if options["link_only"]:
            settle = dict(map(settle_choice, options["settle"]))  # parsed here: call_command skips `type`
            self._link_only(chosen, dry_run=dry_run, since=since, limit=limit, settle=settle, workers=workers,
                            verbosity=options["verbosity"])
            return
        workers = services.backfill_workers(workers)
        most = get_zoho_limits().max_concurrency
        if not 1 <= workers <= most:
            raise CommandError(f"--workers (or SYNC_BACKFILL_WORKERS) must be from 1 to {most} "
                               f"(ZOHO_MAX_CONCURRENCY: each worker has one call in flight), not {workers}.")
        if options["settle"]:
            raise CommandError("--settle settles what --link-only found ambiguous: use it with --link-only.")
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
        finish(self, report, advice="See Failed records in the admin; fix what needs a person, then run "
                                    "`manage.py zoho_retry_failed --include-validation`.")

    def _link_only(self, chosen, *, dry_run, since, limit, settle, workers, verbosity) -> None:
        if limit is not None:
            raise CommandError("--limit does not apply to --link-only: every unlinked record is matched (the cost is "
                               "Zoho's list pages, not the records).")
        if workers is not None and workers > 1:  # asked for on the command line (the setting is not a request)
            self.stdout.write("--link-only runs in this process (it reads lists and writes nothing to Zoho); "
                              "--workers is ignored.")
        try:
            report = link_existing(specs=chosen, dry_run=dry_run, since=since, settle=settle)
        except ZohoConfigurationError as exc:
            raise CommandError(str(exc)) from exc
        except ZohoError as exc:
            raise Unfinished(f"Reading Zoho's lists failed, so nothing further was linked ({exc}); run it again "
                             "later: linking is safe to repeat.") from exc
        self.stdout.write(report.as_text(verbosity=verbosity))
        if report.settled:
            self.stdout.write(self.style.SUCCESS("Nothing is left for a person to settle."))
            return
        message = (f"{len(report.ambiguous)} ambiguous record(s) left for a person (listed above; admin: failed "
                   "records); a normal backfill never creates them.")
        if self._called_from_command_line:
            raise Unfinished(message)
        self.stderr.write(message)
