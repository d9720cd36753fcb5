"""Install the django-q2 schedules (idempotent): run it after every deploy."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from monitoring.schedules import schedules_install


class Command(BaseCommand):
    help = ("Install or update the django-q2 schedules operations relies on; running it again changes nothing. "
            "Exit 0: installed or up to date; 1: they could not be written (the database could not be reached).")

    def handle(self, *args, **options):
        for planned, created in schedules_install():
            state = "installed" if created else "up to date"
            every = "every month" if planned.monthly else f"every {planned.minutes} min"
            self.stdout.write(f"{state:<11} {planned.name!r}: {every}, {planned.func}: {planned.why}")
        from django.utils import timezone
        from django_q.models import Schedule

        from zoho_sync.services import CONTINUE_SCHEDULE

        waiting = Schedule.objects.filter(name=CONTINUE_SCHEDULE).values_list("next_run", flat=True).first()
        if waiting:
            self.stdout.write(f"pending     {CONTINUE_SCHEDULE!r}: a backfill the daily quota stopped goes on at "
                              f"{timezone.localtime(waiting):%Y-%m-%d %H:%M %Z} (installed by the stop itself)")
        self.stdout.write("A running cluster (`manage.py qcluster`) executes them.")
