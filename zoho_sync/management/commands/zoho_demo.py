"""Run the demo on the embedded default: seed demo data, make an admin login, print a summary."""

from __future__ import annotations

import secrets

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db.models import Count

from zoho_sync.models import Customer, CustomerService, Invoice, Payment, ServicePackage

SYNCED_MODELS = (Customer, ServicePackage, CustomerService, Invoice, Payment)


class Command(BaseCommand):
    help = "Seed demo data (once), create the 'admin' login, and print a summary and how to open the admin."

    def add_arguments(self, parser):
        parser.add_argument("--customers", type=int, default=300, help="Customers to seed on first run (default 300).")
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument("--port", type=int, default=8000, help="Port to name in the instructions (default 8000).")

    def handle(self, *args, customers, seed, port, **options):
        call_command("zoho_seed_demo", customers=customers, seed=seed, stdout=self.stdout, stderr=self.stderr)
        self.stdout.write("")
        self.stdout.write(self.style.MIGRATE_HEADING("Records and their sync status"))
        statuses = ("pending", "synced", "failed", "skipped")
        header = f"  {'entity':<20}{'total':>8}" + "".join(f"{s:>10}" for s in statuses)
        self.stdout.write(header)
        for model in SYNCED_MODELS:
            by_status = dict(model.objects.values_list("sync_status").annotate(n=Count("pk")).order_by())
            total = sum(by_status.values())
            cells = "".join(f"{by_status.get(s, 0):>10}" for s in statuses)
            self.stdout.write(f"  {model._meta.verbose_name_plural:<20}{total:>8}{cells}")
        self.stdout.write("")
        username, password = self._admin_login()
        self.stdout.write(self.style.MIGRATE_HEADING("Open the admin"))
        self.stdout.write(f"  .venv/bin/python manage.py runserver {port}")
        self.stdout.write(f"  then browse to http://127.0.0.1:{port}/admin/")
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
