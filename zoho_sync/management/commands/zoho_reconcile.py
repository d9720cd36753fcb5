"""Compare local records with Zoho and report drift (and repair it); or replay Zoho's events into the inbox."""

from __future__ import annotations

import json as _json
import sys
from datetime import UTC, datetime

from django.core.management.base import BaseCommand, CommandError

from zoho_sync import entities
from zoho_sync.conf import ZohoConfigurationError
from zoho_sync.management.exits import Unfinished


class Command(BaseCommand):
    help = ("Compare local records with Zoho by listing (about one call per 200 records) and report drift: missing "
            "in Zoho, missing here, differences in the fields we own (a conflict when someone changed them in "
            "Zoho since our last push) and in those Zoho owns (status, amounts, terms), with counts and totals. "
            "--repair pushes our truth for what we own and pulls Zoho's for what Zoho owns; conflicts are left for "
            "a person unless --conflicts local. --events replays Zoho's events list into the event inbox instead. "
            "Exit 0: in step (or events replayed), 2: drift found (or left after repair; or some events could not "
            "be read, the cursor staying before them), 1: an error (or Zoho's events list could not be read).")

    def add_arguments(self, parser):
        parser.add_argument("--entity", **entities.entity_argument(what="The records to compare"))
        parser.add_argument("--repair", action="store_true", help="Repair what can be repaired.")
        parser.add_argument("--conflicts", choices=["leave", "local"], default="leave",
                            help="With --repair: leave conflicts for a person (default), or push ours over Zoho's.")
        parser.add_argument("--json", action="store_true", help="Print the report as JSON.")
        parser.add_argument("--events", action="store_true",
                            help="Replay Zoho's events (its last 180 days) into the event inbox.")
        parser.add_argument("--since", help="With --events: from this date (YYYY-MM-DD; default: the stored cursor).")

    def handle(self, *args, entity, repair, conflicts, events, since, **options):
        as_json = options["json"]
        try:
            if events:
                return self._events(since, as_json=as_json)
            from zoho_sync.reconcile import reconcile

            report = reconcile(specs=entities.specs_for(entity), repair=repair, conflicts=conflicts)
        except ZohoConfigurationError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(_json.dumps(report.as_dict(), indent=2) if as_json else report.as_text())
        left = [d for d in report.drift if not d.repaired or d.repaired.startswith("left")]
        if left:
            if not as_json:
                self.stdout.write(f"{len(left)} differences {'left' if repair else 'found'}; "
                                  + ("the admin's drift page keeps this report." if repair else
                                     "run again with --repair to repair what can be."))
            sys.exit(2)  # the differences are printed above: exit 2 says no more

    def _events(self, since: str | None, *, as_json: bool) -> None:
        from zoho_sync.replay import events_replay

        start = None
        if since:
            try:
                start = datetime.strptime(since, "%Y-%m-%d").replace(tzinfo=UTC)
            except ValueError as exc:
                raise CommandError(f"--since {since!r} is not a date like 2026-11-01.") from exc
        report = events_replay(since=start)
        self.stdout.write(_json.dumps(report.as_dict()) if as_json else report.as_text())
        if report.list_error:
            raise CommandError(f"Zoho's events list could not be read: {report.list_error}", returncode=1)
        if report.unread:
            named = ", ".join(event_id for event_id, _ in report.unread[:5])
            more = f" and {len(report.unread) - 5} more" if len(report.unread) > 5 else ""
            raise Unfinished(f"{len(report.unread)} event(s) could not be read ({named}{more}); the cursor stays "
                             "before them: run again once Zoho answers.")
        if report.refused:
            raise Unfinished(f"{len(report.refused)} event(s) were refused by the inbox "
                             f"({', '.join(event_id for event_id, _ in report.refused[:5])}).")
