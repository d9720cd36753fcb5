"""Push again, now, the records whose last sync failed."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from zoho_sync import services
from zoho_sync.conf import ZohoConfigurationError
from zoho_sync.management.commands._sync_output import ProgressPrinter, quiet_record_logs, summary
from zoho_sync.sync import specs


class Command(BaseCommand):
    help = ("Retry failed syncs now. Validation failures (Zoho refused the data) are retried only with "
            "--include-validation, after the data is fixed. Exit 0: all synced; 2: some still fail.")

    def add_arguments(self, parser):
        parser.add_argument("--entity", choices=[*specs.ENTITY_CHOICES, "all"], default="all")
        parser.add_argument("--include-validation", action="store_true",
                            help="Also retry records Zoho (or our checks) refused for their data.")

    def handle(self, *args, entity, include_validation, **options):
        try:
            with quiet_record_logs(options["verbosity"]):
                report = services.sync_retry_failed(entity=entity, include_validation=include_validation,
                                                    on_progress=ProgressPrinter(self.stdout))
        except ZohoConfigurationError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(summary(report))
        if report.failed:
            message = f"{report.failed} records still fail; their errors are in the admin's failed syncs."
            if self._called_from_command_line:
                raise CommandError(message, returncode=2)
            self.stderr.write(message)
        else:
            self.stdout.write(self.style.SUCCESS("No failures left among the retried records."))
