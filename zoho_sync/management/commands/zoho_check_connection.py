"""Check that Zoho can be reached with the configured settings: run it before a backfill."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from zoho_sync.connectivity import connectivity_check, connectivity_record


class Command(BaseCommand):
    help = ("Check the Zoho settings, mint or reuse a token, find the organization and make one read. "
            "Exit 0: Zoho is reachable with these settings; 1: a step failed (the failed step says why).")

    def handle(self, *args, **options):
        steps = connectivity_check()
        connectivity_record(steps)  # the dashboard's banners and status read what was found now
        for step in steps:
            mark = self.style.SUCCESS("ok    ") if step.ok else self.style.ERROR("FAILED")
            self.stdout.write(f"{mark} {step.name:<14} {step.detail}")
        if not all(step.ok for step in steps):
            raise CommandError("Zoho cannot be reached with these settings; see the failed step above.")
        self.stdout.write(self.style.SUCCESS("Zoho is reachable: a backfill can start."))
