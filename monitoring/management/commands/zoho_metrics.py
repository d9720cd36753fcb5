"""Roll up the sync log into daily metrics, and print the last days against the KPI targets."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from monitoring.conf import get_monitoring_settings
from monitoring.metrics import metrics_days, metrics_rollup
from monitoring.models import ALL
from zoho_sync.entities import entity_argument, specs_for


class Command(BaseCommand):
    help = ("Roll up the sync log into daily metrics per entity (attempts, success rate, average and 95th-percentile "
            "sync time, API calls, 429s, budget waits) and print the last --days against the KPI targets. "
            "Exit 0: rolled up (and printed); 1: bad arguments.")

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=14, help="Days to print, today included (default 14).")
        parser.add_argument("--entity", **entity_argument(what="The entity to print (all: every entity together)"))
        parser.add_argument("--rollup-only", action="store_true", help="Roll up, print nothing (the schedule).")

    def handle(self, *args, days, entity, rollup_only, **options):
        if days < 1:
            raise CommandError("--days must be at least 1.")
        rolled = metrics_rollup(days=days)
        if rollup_only:
            self.stdout.write(f"Rolled up {rolled} days.")
            return
        conf = get_monitoring_settings()
        name = ALL if entity == "all" else specs_for(entity)[0].name
        self.stdout.write(f"{name}: the last {days} days (UTC), targets {conf.success_rate_target:.0%} success and "
                          f"under {conf.sync_seconds_target:g} s on average")
        self.stdout.write(f"{'day':<11}{'attempts':>9}{'success':>9}{'avg s':>8}{'p95 s':>8}{'calls':>8}"
                          f"{'429s':>6}{'waits s':>9}")
        for m in metrics_days(days=days, entity=name):
            rate = f"{m.success_rate:.1%}" if m.success_rate is not None else "-"
            flag = " below target" if m.success_rate is not None and m.success_rate < conf.success_rate_target else ""
            avg = f"{m.avg_ms / 1000:.2f}" if m.avg_ms is not None else "-"
            p95 = f"{m.p95_ms / 1000:.2f}" if m.p95_ms is not None else "-"
            self.stdout.write(f"{m.day.isoformat():<11}{m.attempts:>9}{rate:>9}{avg:>8}{p95:>8}{m.api_calls:>8}"
                              f"{m.rate_limited:>6}{m.budget_wait_seconds:>9.1f}{flag}"
                              + ("" if m.complete else " (today so far)"))
