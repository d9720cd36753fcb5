"""Failure alerts: the failed records of every entity, by email (HTML and plain text, through Django's mail API and
whatever anymail provider the settings choose) and by chat webhook (Slack's format, Discord's, or generic JSON).
Each way is a `Channel`; CHANNELS lists them all, and the senders and zoho_alert_failed read only that tuple.

One outage is one alert: the alert is keyed on the set of failing records. The same set is not sent again until
the cooldown has passed (a reminder); a different set is news and goes out at once; when the failures clear, a
"resolved" message follows once.

Record text (a customer's name, an error message) is escaped for each channel: Slack's `&`, `<` and `>` as
entities, so no name becomes a mention (`<!channel>`) or a disguised link; on Discord no mention pings
(allowed_mentions) and markdown, links and mentions show as typed. The HTML email is escaped by its template.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import urljoin

import requests
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from monitoring.conf import MONITORING_SETTINGS, MonitoringSettings, get_monitoring_settings
from zoho_sync.entities import BY_NAME
from zoho_sync.models import SharedState
from zoho_sync.redaction import redact_text
from zoho_sync.selectors import failed_records

logger = logging.getLogger(__name__)
STATE_KEY = "monitoring:alert:failed"
MAX_LISTED = 50  # records listed in one message; the count and the dashboard link say the rest
# What Discord's markdown reads (any punctuation may be escaped with a backslash); "@" gets a zero-width space.
_DISCORD_MARKUP = re.compile(r"([\\*_~`|<>\[\]()#:-])")
NO_MENTIONS = {"parse": []}  # Discord: nothing in the message pings anyone


@dataclass(frozen=True)
class FailedRecord:
    entity: str
    pk: int
    label: str
    error: str
    kind: str
    attempts: int
    retrying_at: datetime | None
    url: str
    state: str = "needs_person"  # the one vocabulary's state (SyncState), as on the Failed records page


@dataclass
class Alert:
    kind: str  # "failing", "resolved" or "budget"
    failures: list[FailedRecord]
    hours: int
    dashboard_url: str
    sent_to: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    budget: tuple[int, int, int] | None = None  # calls used today, the daily limit, the reserve (kind "budget")

    @property
    def subject(self) -> str:
        if self.kind == "resolved":
            return "[Zoho sync] Resolved: no failed syncs"
        if self.kind == "budget":
            return f"[Zoho sync] API usage at {self.budget[0] / self.budget[1]:.0%} of today's quota"
        return f"[Zoho sync] {len(self.failures)} failed syncs"

    @property
    def budget_text(self) -> str:
        """The budget alert's text (kind "budget")."""
        used, limit, reserve = self.budget
        return (f"{used} of {limit} Zoho API calls used today (UTC); backfills stop at {limit - reserve}, the rest "
                f"is kept for live triggers. Calls resume after 00:00 UTC.\nUsage by endpoint: {self.dashboard_url}")


@dataclass
class Decision:
    action: str  # "send", "cooldown", "nothing"
    alert: Alert | None
    reason: str


def failures_gather(*, hours: int = 24) -> list[FailedRecord]:
    """The Failed records page's records (selectors.failed_records: failed, waiting or blocked now) that have
    failed within `hours`, every entity in dependency order, newest failure first."""
    since = timezone.now() - timedelta(hours=hours)
    base = get_monitoring_settings().base_url
    found: list[FailedRecord] = []
    for row in failed_records(since=since).order_by("entity_order", "-failing_since", "record_id"):
        opts = BY_NAME[row.entity].model._meta
        path = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[row.record_id])
        found.append(FailedRecord(row.entity, row.record_id, row.label, redact_text(row.last_sync_error),
                                  row.last_error_kind or "unknown", row.sync_attempts, row.next_retry_at,
                                  urljoin(base, path), row.sync_state.value))
    return found


def failed_records_total() -> int:
    """Every record the Failed records page lists, whenever it failed."""
    return failed_records().count()


def _fingerprint(failures: list[FailedRecord]) -> str:
    return hashlib.sha256(",".join(sorted(f"{f.entity}:{f.pk}" for f in failures)).encode()).hexdigest()


def _state() -> dict:
    raw = SharedState.objects.filter(key=STATE_KEY).values_list("data", flat=True).first()
    return json.loads(raw) if raw else {}


def alert_evaluate(*, hours: int = 24, now: datetime | None = None) -> Decision:
    """Decide what to send now: the failures (new set, or the same set after the cooldown), "resolved", or
    nothing. Reads only; alert_send() records what was sent."""
    now = now or timezone.now()
    conf = get_monitoring_settings()
    failures = failures_gather(hours=hours)
    state = _state()
    dashboard = urljoin(conf.base_url, reverse("admin:index"))
    if not failures:
        if state.get("open"):
            return Decision("send", Alert("resolved", [], hours, dashboard), "the failures cleared")
        return Decision("nothing", None, "no failed syncs")
    alert = Alert("failing", failures, hours, dashboard)
    sent_at = parse_datetime(state["sent_at"]) if state.get("sent_at") else None
    if state.get("open") and state.get("fingerprint") == _fingerprint(failures) and sent_at and \
            now - sent_at < timedelta(minutes=conf.alert_cooldown_minutes):
        return Decision("cooldown", alert, f"the same {len(failures)} failures were sent at "
                                           f"{timezone.localtime(sent_at):%Y-%m-%d %H:%M}; next reminder after "
                                           f"{conf.alert_cooldown_minutes} minutes")
    return Decision("send", alert, "new failures" if state.get("fingerprint") != _fingerprint(failures)
                    else "a reminder: the same failures, after the cooldown")


def alert_send(alert: Alert, *, email: bool = True, webhooks: bool = True) -> Alert:
    """Send by every configured channel (or those asked for); remember the alert so it is not repeated."""
    _deliver(alert, channels_chosen(email=email, webhooks=webhooks))
    if alert.sent_to:
        data = {"open": alert.kind == "failing", "fingerprint": _fingerprint(alert.failures),
                "sent_at": timezone.now().isoformat(), "count": len(alert.failures)}
        SharedState.objects.update_or_create(key=STATE_KEY, defaults={"data": json.dumps(data)})
    return alert


def _deliver(alert: Alert, channels: list[tuple[Channel, object]]) -> None:
    """Send by each (channel, target); a failing channel is noted in `alert.errors` and the others still go out."""
    for channel, target in channels:
        try:
            channel.send(alert, target)
            alert.sent_to.append(channel.sent(target))
        except channel.failures as error:
            alert.errors.append(channel.failed(error))


def _send_email(alert: Alert, recipients: list[str]) -> None:
    context = {"alert": alert, "listed": alert.failures[:MAX_LISTED],
               "more": max(0, len(alert.failures) - MAX_LISTED), "by_entity": _by_entity(alert.failures)}
    text = render_to_string("monitoring/alert_email.txt", context)
    html = render_to_string("monitoring/alert_email.html", context)
    message = EmailMultiAlternatives(alert.subject, text, to=recipients)
    message.attach_alternative(html, "text/html")
    message.send()


def _by_entity(failures: list[FailedRecord]) -> dict[str, int]:
    return dict(Counter(failure.entity for failure in failures))


def slack_escape(text: str) -> str:
    """Text for Slack's mrkdwn: `&`, `<` and `>` as entities, so it can hold no mention, command or link."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def discord_escape(text: str) -> str:
    """Text for Discord's markdown: shown as typed (no formatting, masked link or mention; "@everyone" pings no
    one even where allowed_mentions is not honoured)."""
    return _DISCORD_MARKUP.sub(r"\\\1", text).replace("@", "@\u200b")


def _summary_lines(alert: Alert, escape=str) -> list[str]:
    """The alert's lines, with every piece of record text passed through `escape` (the channel's)."""
    if alert.kind == "resolved":
        return ["Resolved: no failed syncs any more."]
    counts = ", ".join(f"{entity} {n}" for entity, n in _by_entity(alert.failures).items())
    lines = [f"{len(alert.failures)} failed syncs in the last {alert.hours} h ({counts})."]
    lines += [f"- {f.entity} {escape(f.label)}: {escape(f.error)} ({escape(f.kind)}, {f.attempts} attempts) {f.url}"
              for f in alert.failures[:10]]
    if len(alert.failures) > 10:
        lines.append(f"... and {len(alert.failures) - 10} more")
    return lines


class Channel:
    """One way an alert goes out. A subclass says which MonitoringSettings field configures it (read when sending,
    never at import), how it sends one alert (failures, resolved, or the API budget) and how it is named in output;
    an instance appended to CHANNELS is used by alert_send, budget_alert_send and zoho_alert_failed."""

    name = ""  # in output: what was sent to, and before an error
    label = ""  # in zoho_alert_failed's help
    field = ""  # the MonitoringSettings field holding its target (recipients, a URL); empty: not configured
    group = "webhook"  # "email" or "webhook": what zoho_alert_failed --email-only / --webhook-only choose
    failures: tuple[type[BaseException], ...] = (Exception,)  # a failed send: noted, the other channels go on

    @property
    def setting(self) -> str:
        """The setting (and environment variable) that configures it, named when no channel is configured."""
        return MONITORING_SETTINGS[self.field]

    def target(self, conf: MonitoringSettings):
        """Where to send, from the settings read now; empty when the channel is not configured."""
        return getattr(conf, self.field)

    def send(self, alert: Alert, target) -> None:
        raise NotImplementedError

    def sent(self, target) -> str:
        return self.name

    def failed(self, error: BaseException) -> str:
        return f"{self.name}: {type(error).__name__}"


class EmailChannel(Channel):
    """Email through Django's mail API (the anymail provider is chosen by settings): HTML and plain text."""

    name, label, field, group = "email", "email", "alert_emails", "email"

    def send(self, alert: Alert, target) -> None:
        if alert.kind == "budget":
            EmailMultiAlternatives(alert.subject, alert.budget_text, to=list(target)).send()
        else:
            _send_email(alert, target)

    def sent(self, target) -> str:
        return f"email to {', '.join(target)}"

    def failed(self, error: BaseException) -> str:
        return f"email: {type(error).__name__}: {redact_text(str(error))}"


class WebhookChannel(Channel):
    """A chat webhook: one JSON POST. Its URL is a secret: only the channel's name is written."""

    failures = (requests.RequestException,)

    def send(self, alert: Alert, target) -> None:
        body = self.budget_body(alert) if alert.kind == "budget" else self.body(alert)
        requests.post(target, json=body, timeout=10).raise_for_status()

    def body(self, alert: Alert) -> dict:
        raise NotImplementedError

    def budget_body(self, alert: Alert) -> dict:
        raise NotImplementedError

    def sent(self, target) -> str:
        return f"{self.name} webhook"

    def failed(self, error: BaseException) -> str:
        return f"{self.name} webhook: {type(error).__name__}"


class SlackChannel(WebhookChannel):
    name, label, field = "Slack", "Slack", "slack_webhook_url"

    def body(self, alert: Alert) -> dict:
        title, text = alert.subject, "\n".join(_summary_lines(alert, slack_escape))
        return {"text": f"{title}\n{text}\nDashboard: {alert.dashboard_url}", "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": title[:150]}},
            {"type": "section", "text": {"type": "mrkdwn", "text": text[:2900]}},
            {"type": "section", "text": {"type": "mrkdwn", "text": f"<{alert.dashboard_url}|Open the dashboard>"}},
        ]}

    def budget_body(self, alert: Alert) -> dict:
        return {"text": f"{alert.subject}\n{alert.budget_text}"}


class DiscordChannel(WebhookChannel):
    name, label, field = "Discord", "Discord", "discord_webhook_url"

    def body(self, alert: Alert) -> dict:
        title, text = alert.subject, "\n".join(_summary_lines(alert, discord_escape))
        color = 0x2EB67D if alert.kind == "resolved" else 0xE01E5A
        return {"content": title[:2000], "allowed_mentions": NO_MENTIONS,
                "embeds": [{"title": title[:256], "description": text[:4000], "url": alert.dashboard_url,
                            "color": color}]}

    def budget_body(self, alert: Alert) -> dict:
        return {"content": f"{alert.subject}\n{alert.budget_text}"[:2000], "allowed_mentions": NO_MENTIONS}


class GenericWebhookChannel(WebhookChannel):
    """Any receiver of a JSON message: the alert as data (record text unescaped: the receiver escapes it)."""

    name, label, field = "generic", "JSON", "webhook_url"

    def body(self, alert: Alert) -> dict:
        return {"event": f"zoho_sync.failures.{alert.kind}", "subject": alert.subject,
                "dashboard_url": alert.dashboard_url, "hours": alert.hours, "count": len(alert.failures),
                "failures": [{"entity": f.entity, "id": f.pk, "record": f.label, "error": f.error, "kind": f.kind,
                              "attempts": f.attempts, "url": f.url} for f in alert.failures[:MAX_LISTED]]}

    def budget_body(self, alert: Alert) -> dict:
        used, limit, reserve = alert.budget
        return {"event": "zoho_sync.api_budget", "subject": alert.subject, "used": used, "daily_limit": limit,
                "daily_reserve": reserve, "usage_url": alert.dashboard_url}


# Every alert channel, in sending order: the one list the senders and zoho_alert_failed read (at call time).
CHANNELS: tuple[Channel, ...] = (EmailChannel(), SlackChannel(), DiscordChannel(), GenericWebhookChannel())


def channels_chosen(*, email: bool = True, webhooks: bool = True) -> list[tuple[Channel, object]]:
    """The configured channels among the groups asked for, each with its target, from the settings read now."""
    conf = get_monitoring_settings()
    groups = {group for group, asked in (("email", email), ("webhook", webhooks)) if asked}
    chosen = [(channel, channel.target(conf)) for channel in CHANNELS if channel.group in groups]
    return [(channel, target) for channel, target in chosen if target]


BUDGET_KEY = "monitoring:alert:budget"


def budget_alert_evaluate() -> Alert | None:
    """Today's API usage at or past MONITORING_BUDGET_WARN_SHARE of the daily quota, not yet alerted today (UTC):
    the alert to send, else None."""
    from zoho_sync import selectors
    from zoho_sync.conf import get_zoho_limits

    conf, limits = get_monitoring_settings(), get_zoho_limits()
    used = selectors.api_calls_today()
    if used < conf.budget_warn_share * limits.daily_limit:
        return None
    today = timezone.now().date().isoformat()
    raw = SharedState.objects.filter(key=BUDGET_KEY).values_list("data", flat=True).first()
    if raw and json.loads(raw).get("day") == today:
        return None
    return Alert("budget", [], 24, urljoin(conf.base_url, reverse("admin:zoho_sync_apiusage_changelist")),
                 budget=(used, limits.daily_limit, limits.daily_reserve))


def budget_alert_send(alert: Alert) -> Alert:
    """Send the budget alert by every configured channel; remember the day so it goes out once a day."""
    _deliver(alert, channels_chosen())
    if alert.sent_to:
        SharedState.objects.update_or_create(key=BUDGET_KEY, defaults={
            "data": json.dumps({"day": timezone.now().date().isoformat(), "used": alert.budget[0]})})
    return alert
