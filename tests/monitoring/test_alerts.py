"""Failure alerts: the email (both parts, the links), the Slack, Discord and generic webhook messages received by a
local HTTP server, the cooldown keyed on the set of failures, the resolved message, and the exit codes."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import StringIO

import pytest
from django.core import mail
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from monitoring.alerts import Channel, alert_evaluate, alert_send
from tests.builders import make_customer, make_invoice
from zoho_sync.models import Customer, SharedState, SyncLog, SyncStatus

pytestmark = pytest.mark.django_db


class Receiver:
    """A local webhook receiver: records each POST's path and JSON body; answers 200 (or `status`)."""

    def __init__(self, status: int = 200):
        received = self.received = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append((self.path, json.loads(body)))
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def bodies(self, path: str) -> list[dict]:
        return [body for p, body in self.received if p == path]


@pytest.fixture
def receiver(settings):
    server = Receiver()
    settings.MONITORING_SLACK_WEBHOOK_URL = f"{server.url}/slack"
    settings.MONITORING_DISCORD_WEBHOOK_URL = f"{server.url}/discord"
    settings.MONITORING_WEBHOOK_URL = f"{server.url}/generic"
    settings.MONITORING_ALERT_EMAILS = ["ops@example.com"]
    settings.MONITORING_BASE_URL = "https://sync.example.com"
    yield server
    server.server.shutdown()


def fail(obj, error: str, *, retry=None, attempts: int = 3) -> None:
    type(obj).objects.filter(pk=obj.pk).update(sync_status=SyncStatus.FAILED, last_sync_error=error,
                                               last_error_kind="invalid_data" if retry is None else "server",
                                               sync_attempts=attempts, next_retry_at=retry)
    entity = "customer" if isinstance(obj, Customer) else "invoice"
    SyncLog.objects.create(entity=entity, object_pk=str(obj.pk), action="create", status="failed", message=error)


def alert_command(*args) -> tuple[int, str]:
    out = StringIO()
    try:
        call_command("zoho_alert_failed", *args, stdout=out)
    except CommandError as error:
        return error.returncode, out.getvalue() + str(error)
    return 0, out.getvalue()


def test_failures_go_out_by_email_and_every_webhook_with_links(receiver, settings):
    customer = make_customer(email="broken")
    invoice = make_invoice(customer=make_customer())
    fail(customer, "Email address 'broken' is not valid.")
    fail(invoice, "Zoho answered HTTP 500", retry=timezone.now() + timedelta(minutes=30), attempts=2)

    code, output = alert_command()

    assert code == 2 and "2 failed syncs in the last 24 h: new failures" in output
    assert "Sent '[Zoho sync] 2 failed syncs': email to ops@example.com" in output
    message = mail.outbox[0]
    assert message.subject == "[Zoho sync] 2 failed syncs" and message.to == ["ops@example.com"]
    customer_url = f"https://sync.example.com/admin/zoho_sync/customer/{customer.pk}/change/"
    assert "Email address 'broken' is not valid." in message.body and customer_url in message.body
    assert "needs a person" in message.body and "tried again at" in message.body
    assert "https://sync.example.com/admin/" in message.body
    html, kind = message.alternatives[0]
    assert kind == "text/html" and f'href="{customer_url}"' in html and "Email address &#x27;broken&#x27;" in html
    slack, discord, generic = (receiver.bodies(p) for p in ("/slack", "/discord", "/generic"))
    assert slack[0]["blocks"][0]["text"]["text"] == "[Zoho sync] 2 failed syncs"
    assert customer_url in slack[0]["text"] and "<https://sync.example.com/admin/|Open the dashboard>" in json.dumps(
        slack[0])
    assert discord[0]["embeds"][0]["url"] == "https://sync.example.com/admin/" and discord[0]["content"]
    assert generic[0]["event"] == "zoho_sync.failures.failing" and generic[0]["count"] == 2
    assert {f["entity"] for f in generic[0]["failures"]} == {"customer", "invoice"}


def test_one_outage_is_one_alert_then_news_then_a_reminder_then_resolved(receiver, settings):
    first = make_customer()
    fail(first, "bad")
    assert alert_command()[0] == 2 and len(mail.outbox) == 1
    code, output = alert_command()
    assert code == 2 and "the same 1 failures were sent" in output and len(mail.outbox) == 1, "the cooldown holds"
    second = make_customer()
    fail(second, "worse")
    assert alert_command()[0] == 2 and len(mail.outbox) == 2, "a different set of failures is news"
    state = json.loads(SharedState.objects.get(key="monitoring:alert:failed").data)
    later = timezone.now() + timedelta(minutes=settings.MONITORING_ALERT_COOLDOWN_MINUTES + 1)
    decision = alert_evaluate(now=later)
    assert decision.action == "send" and "reminder" in decision.reason and state["count"] == 2
    Customer.objects.update(sync_status=SyncStatus.SYNCED)
    code, output = alert_command()
    assert code == 0 and "the failures cleared" in output
    assert mail.outbox[-1].subject == "[Zoho sync] Resolved: no failed syncs"
    assert receiver.bodies("/generic")[-1]["event"] == "zoho_sync.failures.resolved"
    assert alert_command() == (0, "0 failed syncs in the last 24 h: no failed syncs.\n"), "resolved once"


def test_dry_run_and_one_channel_only(receiver):
    fail(make_customer(), "bad")
    code, output = alert_command("--dry-run")
    assert code == 2 and "Would send '[Zoho sync] 1 failed syncs'" in output
    assert mail.outbox == [] and receiver.received == []
    alert_command("--webhook-only")
    assert mail.outbox == [] and len(receiver.received) == 3
    SharedState.objects.filter(key="monitoring:alert:failed").delete()
    alert_command("--email-only")
    assert len(mail.outbox) == 1 and len(receiver.received) == 3


def test_old_failures_and_records_fixed_since_are_left_out(receiver):
    customer = make_customer()
    fail(customer, "bad")
    SyncLog.objects.update(created_at=timezone.now() - timedelta(hours=30))
    assert alert_command()[0] == 0
    assert alert_command("--hours", "48")[0] == 2
    Customer.objects.update(sync_status=SyncStatus.SYNCED)
    SyncLog.objects.update(created_at=timezone.now())
    assert alert_evaluate(hours=48).alert.kind == "resolved", "a record fixed since is not a failure"


def test_no_channel_and_a_failing_channel_exit_1(settings, receiver):
    fail(make_customer(), "bad")
    for name in ("MONITORING_SLACK_WEBHOOK_URL", "MONITORING_DISCORD_WEBHOOK_URL", "MONITORING_WEBHOOK_URL"):
        setattr(settings, name, "")
    settings.MONITORING_ALERT_EMAILS = []
    code, output = alert_command()
    assert code == 1 and "No alert channel is configured" in output
    broken = Receiver(status=500)
    settings.MONITORING_WEBHOOK_URL = f"{broken.url}/secret-token-in-path"
    code, output = alert_command()
    broken.server.shutdown()
    assert code == 1 and "generic webhook: HTTPError" in output and "secret-token" not in output
    assert SharedState.objects.filter(key="monitoring:alert:failed").count() == 0, "nothing was sent: not held back"


def test_the_help_documents_the_exit_codes(capsys):
    with pytest.raises(SystemExit):
        call_command("zoho_alert_failed", "--help")
    text = " ".join(capsys.readouterr().out.split())
    assert "Exit 0: no failed syncs" in text and "2: there are failed syncs" in text and "1: no channel" in text


def test_alert_send_keeps_going_when_email_fails(receiver, monkeypatch):
    fail(make_customer(), "bad")
    monkeypatch.setattr("monitoring.alerts._send_email", lambda *a: (_ for _ in ()).throw(OSError("smtp down")))
    alert = alert_send(alert_evaluate().alert)
    assert alert.errors == ["email: OSError: smtp down"] and len(alert.sent_to) == 3


def test_the_scheduled_tasks_send_the_alert_and_the_daily_report(receiver):
    from monitoring import tasks

    fail(make_customer(), "bad")
    assert tasks.alert_failed().startswith("[Zoho sync] 1 failed syncs: email to ops@example.com")
    assert tasks.alert_failed().startswith("the same 1 failures were sent")
    assert tasks.health_report_email().endswith("sent to ops@example.com")
    assert mail.outbox[-1].subject.startswith("[Zoho sync] ") and "Database sync status" in mail.outbox[-1].body


def test_the_budget_alert_goes_out_once_a_day_past_80_percent(receiver, settings):
    from monitoring import tasks
    from zoho_sync.models import ApiUsage

    settings.ZOHO_DAILY_LIMIT, settings.ZOHO_DAILY_RESERVE = 1000, 100
    usage = ApiUsage.objects.create(day=timezone.now().date(), organization_id="1", endpoint="POST /customers",
                                    calls=799)
    assert tasks.budget_alert() == "below the warning share, or already sent today"
    ApiUsage.objects.filter(pk=usage.pk).update(calls=850)
    assert tasks.budget_alert().startswith("sent: email to ops@example.com")
    assert mail.outbox[-1].subject == "[Zoho sync] API usage at 85% of today's quota"
    assert "backfills stop at 900" in mail.outbox[-1].body
    assert "https://sync.example.com/admin/zoho_sync/apiusage/" in mail.outbox[-1].body
    generic = receiver.bodies("/generic")[-1]
    assert generic["event"] == "zoho_sync.api_budget" and generic["used"] == 850
    ApiUsage.objects.filter(pk=usage.pk).update(calls=950)
    assert tasks.budget_alert() == "below the warning share, or already sent today", "once a day"
    assert len(mail.outbox) == 1


def test_api_usage_is_readable_in_the_admin(admin_client):
    from zoho_sync.models import ApiUsage

    ApiUsage.objects.create(day=timezone.now().date(), organization_id="1", endpoint="GET /customers", calls=12)
    page = admin_client.get("/admin/zoho_sync/apiusage/")
    assert page.status_code == 200 and b"GET /customers" in page.content


HOSTILE_EMAIL = "<!channel> <https://e.vl/login|Fix billing now>"


def test_record_text_is_escaped_for_each_channel(receiver):
    """A customer's email and account number that would ping a channel, disguise a link or mention everyone arrive
    as plain text on Slack and Discord, and escaped in the HTML email; the generic webhook carries them as data."""
    customer = make_customer(account_number="CT-<@1>@everyone[x](//e.vl)")
    fail(customer, f"Email address '{HOSTILE_EMAIL}' is not valid & was refused.")

    assert alert_command()[0] == 2
    [slack], [discord], [generic] = (receiver.bodies(p) for p in ("/slack", "/discord", "/generic"))

    slack_text = slack["blocks"][1]["text"]["text"]
    escaped = "&lt;!channel&gt; &lt;https://e.vl/login|Fix billing now&gt;"
    assert escaped in slack_text and escaped in slack["text"] and "is not valid &amp; was refused" in slack_text
    assert "CT-&lt;@1&gt;@everyone[x](//e.vl)" in slack_text
    assert "<!channel>" not in json.dumps(slack) and "<https://e.vl" not in json.dumps(slack)
    assert "<https://sync.example.com/admin/|Open the dashboard>" in json.dumps(slack), "our own link stays a link"

    description = discord["embeds"][0]["description"]
    assert discord["allowed_mentions"] == {"parse": []}
    assert "@\u200beveryone" in description and "\\<@\u200b1\\>" in description
    assert "\\[x\\]\\(//e.vl\\)" in description, "no masked link"
    assert "@everyone" not in description and "<@1>" not in description

    assert generic["failures"][0]["record"] == customer.account_number
    assert HOSTILE_EMAIL in generic["failures"][0]["error"], "JSON data is data: the receiver escapes for its use"

    html, _ = mail.outbox[0].alternatives[0]
    assert "&lt;!channel&gt; &lt;https://e.vl/login|Fix billing now&gt;" in html and HOSTILE_EMAIL not in html
    assert HOSTILE_EMAIL in mail.outbox[0].body, "the plain-text part is plain text"


def test_the_budget_alert_pings_no_one_on_discord(receiver, settings):
    from monitoring.alerts import budget_alert_evaluate, budget_alert_send
    from zoho_sync.models import ApiUsage

    settings.ZOHO_DAILY_LIMIT = 10
    ApiUsage.objects.create(day=timezone.now().date(), organization_id="1", endpoint="GET /customers", calls=9)
    budget_alert_send(budget_alert_evaluate())
    assert receiver.bodies("/discord")[0]["allowed_mentions"] == {"parse": []}


class ListChannel(Channel):
    """A channel no module of the project knows of: it delivers to a list (unless unconfigured, or broken)."""

    name, label, setting = "list", "list", "MONITORING_LIST_CHANNEL"

    def __init__(self, *, configured: bool = True, broken: bool = False):
        self.configured, self.broken, self.delivered = configured, broken, []

    def target(self, conf):
        return "the list" if self.configured else ""

    def send(self, alert, target):
        if self.broken:
            raise OSError("list full")
        self.delivered.append((target, alert.kind, alert.subject))


@pytest.fixture
def appended(monkeypatch):
    """Append a channel to CHANNELS, as a new channel's module would: nothing else is edited."""
    from monitoring import alerts

    def append(channel):
        monkeypatch.setattr(alerts, "CHANNELS", (*alerts.CHANNELS, channel))
        return channel

    return append


def test_a_channel_appended_to_channels_is_used_by_the_sender_and_the_command(receiver, appended, settings):
    channel = appended(ListChannel())
    fail(make_customer(), "bad")

    code, output = alert_command()

    assert code == 2 and "Sent '[Zoho sync] 1 failed syncs': list." in output
    assert channel.delivered == [("the list", "failing", "[Zoho sync] 1 failed syncs")]
    assert len(mail.outbox) == 1 and len(receiver.received) == 3, "the others still go out"
    assert "Slack/Discord/JSON/list webhook" in " ".join(call_command_help().split())
    for name in ("MONITORING_SLACK_WEBHOOK_URL", "MONITORING_DISCORD_WEBHOOK_URL", "MONITORING_WEBHOOK_URL"):
        setattr(settings, name, "")
    settings.MONITORING_ALERT_EMAILS = []
    Customer.objects.update(sync_status=SyncStatus.SYNCED)
    code, output = alert_command()
    assert code == 0 and "Sent '[Zoho sync] Resolved: no failed syncs': list." in output, "the only channel is one"
    fail(make_customer(), "bad")
    assert alert_command("--email-only")[1].endswith("set MONITORING_ALERT_EMAILS, MONITORING_SLACK_WEBHOOK_URL, "
                                                     "MONITORING_DISCORD_WEBHOOK_URL, MONITORING_WEBHOOK_URL or "
                                                     "MONITORING_LIST_CHANNEL."), "it is a webhook, by its group"
    assert alert_command("--webhook-only")[0] == 2 and channel.delivered[-1][1] == "failing"


def test_an_appended_channel_gets_the_budget_alert_and_its_failure_is_noted(receiver, appended, settings):
    from monitoring.alerts import budget_alert_evaluate, budget_alert_send
    from zoho_sync.models import ApiUsage

    channel = appended(ListChannel())
    settings.ZOHO_DAILY_LIMIT = 10
    ApiUsage.objects.create(day=timezone.now().date(), organization_id="1", endpoint="GET /customers", calls=9)
    alert = budget_alert_send(budget_alert_evaluate())
    assert channel.delivered == [("the list", "budget", "[Zoho sync] API usage at 90% of today's quota")]
    assert alert.sent_to[-1] == "list" and mail.outbox[-1].subject == channel.delivered[0][2]
    appended(ListChannel(broken=True))
    fail(make_customer(), "bad")
    alert = alert_send(alert_evaluate().alert)
    assert alert.errors == ["list: OSError"] and len(alert.sent_to) == 5


def test_an_appended_channel_left_unconfigured_is_skipped(receiver, appended):
    channel = appended(ListChannel(configured=False))
    fail(make_customer(), "bad")
    assert alert_command()[0] == 2 and channel.delivered == []


def call_command_help() -> str:
    from django.core.management import get_commands, load_command_class

    return load_command_class(get_commands()["zoho_alert_failed"], "zoho_alert_failed").help
