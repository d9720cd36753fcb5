"""Push again, now, the records whose last sync failed or that wait for a dependency."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from zoho_sync import entities, services
from zoho_sync.conf import ZohoConfigurationError
from zoho_sync.management.commands._sync_output import EXIT_HELP, ProgressPrinter, finish, quiet_record_logs, summary
from zoho_sync.models import SyncState


class Command(BaseCommand):
    help = ("Retry failed records now, and records waiting for a dependency. Failures that need a person (Zoho or "
            "our checks refused the data, authentication) are retried only with --include-validation, after the "
            "data is fixed; records blocked by them follow once they land. " + EXIT_HELP)

    def add_arguments(self, parser):
        parser.add_argument("--entity", **entities.entity_argument(what="The records to retry"))
        parser.add_argument("--include-validation", action="store_true",
                            help="Also retry records Zoho (or our checks) refused for their data (default: "
                                 "only those that may succeed unchanged).")

    def handle(self, *args, entity, include_validation, **options):
        try:
            with quiet_record_logs(options["verbosity"]):
                report = services.sync_retry_failed(entity=entity, include_validation=include_validation,
                                                    on_progress=ProgressPrinter(self.stdout), now_for_person=True)
        except ZohoConfigurationError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(summary(report))
        advice = "Their errors are in the admin's Failed records."
        if not include_validation and report.unsettled.get(SyncState.NEEDS_PERSON):
            advice += (" Records that need a person were not retried: fix their data, then run "
                       "`manage.py zoho_retry_failed --include-validation`.")
        finish(self, report, advice=advice)
