"""Install the django-q2 schedules (idempotent): run it after every deploy."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from monitoring.schedules import schedules_install


class Command(BaseCommand):
    help = "Install or update the django-q2 schedules operations relies on; running it again changes nothing."

    def handle(self, *args, **options):
        for planned, created in schedules_install():
            state = "installed" if created else "up to date"
            self.stdout.write(f"{state:<11} {planned.name!r}: every {planned.minutes} min, {planned.func}: "
                              f"{planned.why}")
        self.stdout.write("A running cluster (`manage.py qcluster`) executes them.")
