"""Create deterministic demo data: customers with their services, invoices and payments."""

from __future__ import annotations

import time
from datetime import date

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from zoho_sync import demo


class Command(BaseCommand):
    help = ("Create realistic demo data (example.com addresses, a few internal test accounts, some bad records). "
            "Exit 0: created, or left as it was when customers exist already; 1: bad arguments.")

    def add_arguments(self, parser):
        parser.add_argument("--customers", type=int, default=300, help="How many customers to create (default 300).")
        parser.add_argument("--seed", type=int, default=1,
                            help="Random seed: the same seed gives the same data (default 1).")
        parser.add_argument(
            "--as-of", type=date.fromisoformat, default=None, help="Date the data ends on, YYYY-MM-DD (default today)."
        )
        parser.add_argument("--reset", action="store_true",
                            help="Delete all billing records and the sync log first (default: keep them, and seed "
                                 "nothing when customers exist).")

    def handle(self, *args, customers, seed, as_of, reset, **options):
        if customers < 1:
            raise CommandError("--customers must be at least 1.")
        if reset:
            demo.demo_reset()
            self.stdout.write("Deleted the existing billing records and the sync log.")
        elif existing := demo.demo_data_present():
            self.stdout.write(
                self.style.WARNING(f"The database already has {existing} customers; leaving them as they are "
                                   "(use --reset to start again).")
            )
            return
        started = time.monotonic()
        report = demo.demo_seed(customers=customers, seed=seed, as_of=as_of or timezone.localdate())
        elapsed = time.monotonic() - started
        rows = sum(report.counts.values())
        self.stdout.write(self.style.SUCCESS(f"Created {rows:,} rows in {elapsed:.1f} s:"))
        for name, count in report.counts.items():
            self.stdout.write(f"  {name:<20} {count:>10,}")
