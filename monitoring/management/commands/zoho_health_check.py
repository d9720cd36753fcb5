"""The morning health check: every named check by category, an overall status, and an exit code for cron."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand

from monitoring.checks import UNHEALTHY, health_run
from zoho_sync.management.exits import exit_with


class Command(BaseCommand):
    help = ("Check the sync's health: sync status per entity, the last 24 hours' success rate and sync time, Zoho "
            "connectivity, data integrity, the django-q2 queue and the API budget. Overall HEALTHY, DEGRADED or "
            "UNHEALTHY. Exit 0: healthy or degraded; 1: unhealthy (a critical check failed).")

    def add_arguments(self, parser):
        parser.add_argument("--detailed", action="store_true", help="Each check's details (counts per entity...).")
        parser.add_argument("--email", action="store_true", help="Plain text for an email, with a subject line.")
        parser.add_argument("--json", action="store_true", help="The report as JSON.")
        parser.add_argument("--cheap", action="store_true", help="Only the checks /health/ runs (no Zoho call).")

    def handle(self, *args, detailed, email, json: bool, cheap, **options):
        report = health_run(cheap_only=cheap)
        if json:
            self.stdout.write(_json(report.as_dict()))
        else:
            self.stdout.write(report.as_text(detailed=detailed, email=email))
            if detailed:
                from zoho_sync.selectors import sync_state_counts
                from zoho_sync.sync.tables import LEGEND, state_table

                self.stdout.write(f"\nEvery record by state ({LEGEND}):")
                for line in state_table(sync_state_counts()):
                    self.stdout.write(line)
        if report.status == UNHEALTHY:
            exit_with(self, "Unhealthy: a critical check failed (see above).", 1)


def _json(data) -> str:
    return json.dumps(data, indent=2, default=str)
