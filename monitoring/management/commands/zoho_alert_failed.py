"""Send the failed syncs by email and chat webhook, once per outage (a cooldown keyed on the failing records)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from monitoring import alerts
from monitoring.alerts import alert_evaluate, alert_send, channels_chosen, failed_records_total
from zoho_sync.management.exits import exit_with

EXIT_HELP = ("Exit 0: no failed syncs (a resolved message may have gone out); 2: there are failed syncs (sent now, "
             "or held back by the cooldown); 1: no channel is configured, or sending failed.")


def _listed(names: list[str], last: str) -> str:
    """"a, b, c {last} d"."""
    return f"{', '.join(names[:-1])} {last} {names[-1]}" if len(names) > 1 else "".join(names)


class Command(BaseCommand):
    @property
    def help(self) -> str:
        """Names the channels of monitoring.alerts.CHANNELS as they are now: "by email and Slack/Discord/JSON
        webhook"."""
        emails = [channel.label for channel in alerts.CHANNELS if channel.group == "email"]
        hooks = "/".join(channel.label for channel in alerts.CHANNELS if channel.group == "webhook")
        by = _listed(emails + ([f"{hooks} webhook"] if hooks else []), "and")
        return f"Alert on the failed syncs of every entity by {by}. " + EXIT_HELP

    def add_arguments(self, parser):
        parser.add_argument("--hours", type=int, default=24,
                            help="Records on the Failed records page that failed within this many hours (their "
                                 "failure began, or was logged, then; default 24).")
        parser.add_argument("--dry-run", action="store_true", help="Say what would be sent; send nothing.")
        only = parser.add_mutually_exclusive_group()
        only.add_argument("--email-only", action="store_true",
                          help="Send by email alone, not to the chat webhooks (default: every configured channel).")
        only.add_argument("--webhook-only", action="store_true",
                          help="Send to the chat webhooks alone, no email (default: every configured channel).")

    def handle(self, *args, hours, dry_run, email_only, webhook_only, **options):
        if hours < 1:
            raise CommandError("--hours must be at least 1.", returncode=1)
        email, webhooks = not webhook_only, not email_only
        channels = channels_chosen(email=email, webhooks=webhooks)
        decision = alert_evaluate(hours=hours)
        alert = decision.alert
        count = len(alert.failures) if alert else 0
        self.stdout.write(f"{count} failed syncs in the last {hours} h: {decision.reason}.")
        total = failed_records_total()
        if total != count:  # the page lists them all: say where the rest are, so the two never seem to disagree
            self.stdout.write(f"Failed records lists {total} in all: the other {total - count} have not failed in the "
                              f"last {hours} h (waiting or blocked, or failing for longer; --hours widens the window).")
        if alert and decision.action == "send" and dry_run:
            self.stdout.write(f"Would send {alert.subject!r}.")
        elif alert and decision.action == "send":
            if not channels:
                names = _listed([channel.setting for channel in alerts.CHANNELS], "or")
                raise CommandError(f"No alert channel is configured: set {names}.", returncode=1)
            alert_send(alert, email=email, webhooks=webhooks)
            for where in alert.sent_to:
                self.stdout.write(f"Sent {alert.subject!r}: {where}.")
            if alert.errors:
                raise CommandError("Sending failed: " + "; ".join(alert.errors), returncode=1)
        if count:
            exit_with(self, f"{count} failed syncs: see Failed records in the admin.")
