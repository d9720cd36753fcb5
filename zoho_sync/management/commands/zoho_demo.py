"""The main job on the embedded default: seed demo data, push it to the local Zoho sandbox with progress, and
print the summary, the health of the run and how to open the admin."""

from __future__ import annotations

import secrets

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from zoho_sync import selectors
from zoho_sync.demo_sandbox import DEMO_PER_MINUTE, demo_zoho
from zoho_sync.models import UNSETTLED_STATES, SyncState
from zoho_sync.sync.tables import LEGEND, state_table


def next_steps(port: int = 8000, sandbox_port: int = 8765) -> list[str]:
    """The commands the demo ends with, as README's "Two commands" names them: the demo's Zoho, the server, the
    schedules (once) and the cluster."""
    sandbox = ".venv/bin/python manage.py zoho_sandbox --demo" + (
        f" --port {sandbox_port}" if sandbox_port != 8765 else "")
    return [sandbox, f".venv/bin/python manage.py runserver {port}",
            ".venv/bin/python manage.py zoho_schedules    # once: install the django-q2 schedules",
            ".venv/bin/python manage.py qcluster"]


class Command(BaseCommand):
    help = ("Seed demo data (once), push it to the local Zoho sandbox (never a real organization), print the "
            "health of the run, and create the 'admin' login. Exit 0: the demo ran to the end (degraded or not: it "
            "prints the health of the run); 1: bad arguments, or the demo could not run (the error is printed).")

    def add_arguments(self, parser):
        parser.add_argument("--customers", type=int, default=300, help="Customers to seed on first run (default 300).")
        parser.add_argument("--seed", type=int, default=1,
                            help="Random seed of the demo data: the same seed gives the same data (default 1).")
        parser.add_argument("--port", type=int, default=8000, help="Port to name for the admin (default 8000).")
        parser.add_argument("--sandbox-port", type=int, default=8765,
                            help="Port of the local Zoho sandbox (default 8765).")

    def handle(self, *args, customers, seed, port, sandbox_port, **options):
        heading = self.style.MIGRATE_HEADING
        self.stdout.write(heading("1. Demo data"))
        call_command("zoho_seed_demo", customers=customers, seed=seed, stdout=self.stdout, stderr=self.stderr)
        with demo_zoho(sandbox_port) as url:
            self.stdout.write(heading(f"\n2. The local Zoho Billing sandbox at {url} "
                                      f"(its limit is raised to {DEMO_PER_MINUTE}/min; real Zoho allows ~100)"))
            call_command("zoho_check_connection", stdout=self.stdout)
            self.stdout.write(heading("\n3. Backfill: every due record to Zoho, in dependency order"))
            call_command("zoho_backfill", stdout=self.stdout, stderr=self.stdout)
            self.stdout.write(heading("\n4. Health of the run"))
            self._health()
            self.stdout.write(heading("\n5. The health check (`manage.py zoho_health_check`)"))
            try:
                call_command("zoho_health_check", stdout=self.stdout)
            except CommandError as unhealthy:  # the report says why; the demo itself still ran to the end
                self.stdout.write(self.style.ERROR(str(unhealthy)))
        self.stdout.write(heading("\n6. Open the admin, and start the workers"))
        self._instructions(port, sandbox_port)

    def _health(self) -> None:
        counts = selectors.sync_state_counts()
        self.stdout.write(f"  Every record by state ({LEGEND}):")
        for line in state_table(counts, indent="  "):
            self.stdout.write(line)
        if skipped := sum(c[SyncState.SKIPPED] for c in counts.values()):
            self.stdout.write(f"  Why {skipped} are skipped (by design: never pushed to Zoho):")
            for entity, reasons in selectors.sync_skip_reasons().items():
                for reason, n in reasons.items():
                    self.stdout.write(f"    {entity} {n}: {reason}")
        unsettled = {state: sum(c[state] for c in counts.values()) for state in UNSETTLED_STATES}
        self.stdout.write(f"  API calls today: {selectors.api_calls_today()}")
        failures = selectors.sync_failures_recent(limit=8)
        if failures:
            self.stdout.write("  Latest failures (the demo data holds a few bad records on purpose):")
            for log in failures:
                self.stdout.write(f"    {log.entity} {log.object_repr}: {log.zoho_message or log.message}")
        if any(unsettled.values()):
            parts = ", ".join(f"{n} {SyncState(state).label.lower()}" for state, n in unsettled.items() if n)
            self.stdout.write(self.style.WARNING(
                f"  Degraded: {parts}. See 'Failed records' in the admin, fix the data, then "
                "`.venv/bin/python manage.py zoho_retry_failed --include-validation`."))
        else:
            self.stdout.write(self.style.SUCCESS("  Healthy: every record is synced, skipped by design, or pending."))

    def _instructions(self, port: int, sandbox_port: int) -> None:
        username, password = self._admin_login()
        self.stdout.write("  Start these side by side, each in its own terminal (the demo's Zoho first: ./bin/demo "
                          "wrote its address and limits to .env):")
        for line in next_steps(port, sandbox_port):
            self.stdout.write(f"    {line}")
        self.stdout.write("  The cluster runs the triggers (a saved record pushed within seconds), the schedules and "
                          "the health check's queue check.")
        self.stdout.write(f"  Then browse to http://127.0.0.1:{port}/admin/dashboard/ (the sync dashboard; the "
                          f"admin is http://127.0.0.1:{port}/admin/)")
        if password:
            self.stdout.write(f"  log in as {username!r} with password {password!r} (shown once; change it with "
                              f"`.venv/bin/python manage.py changepassword {username}`)")
        else:
            self.stdout.write(f"  log in as {username!r} (password shown on the first run; reset it with "
                              f"`.venv/bin/python manage.py changepassword {username}`)")

    def _admin_login(self) -> tuple[str, str | None]:
        user_model = get_user_model()
        if user_model.objects.filter(username="admin").exists():
            return "admin", None
        password = secrets.token_urlsafe(12)
        user_model.objects.create_superuser("admin", "admin@example.com", password)
        return "admin", password
