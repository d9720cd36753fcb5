"""Event replay: read Zoho's events list (its last 180 days, §12.12) into the inbox, so a webhook that never
arrived is caught. One machine tails the list at a time (a job lock a dead holder loses) and keeps a cursor (the
newest event time seen), so a scheduled replay resumes where the last one stopped. An event already in the inbox
costs no call and changes nothing; a missing one costs one read and is applied like a webhook."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import pairwise

from django.utils import timezone

from zoho_sync.inbox import event_accept
from zoho_sync.models import SharedState, ZohoEvent
from zoho_sync.shared_state import job_lock
from zoho_sync.sync.inbound import zoho_time

CURSOR_KEY = "inbox:events-cursor"
WINDOW = timedelta(days=180)  # what Zoho keeps
OVERLAP = timedelta(minutes=10)  # the cursor is read back this far: events stamped out of order are not missed


@dataclass
class ReplayReport:
    since: datetime | None = None
    listed: int = 0
    already: int = 0
    added: list[str] = field(default_factory=list)
    calls: int = 0
    busy: bool = False  # another machine replays now
    cursor: datetime | None = None

    def as_text(self) -> str:
        if self.busy:
            return "Another process replays Zoho's events right now; nothing done."
        text = (f"Events since {self.since:%Y-%m-%d %H:%M %Z}: {self.listed} listed by Zoho, {self.already} already "
                f"in the inbox, {len(self.added)} added and queued to be applied; {self.calls} API calls.")
        return text + (f" Cursor now {self.cursor:%Y-%m-%d %H:%M:%S %Z}." if self.cursor else "")


def cursor_read() -> datetime | None:
    raw = SharedState.objects.filter(key=CURSOR_KEY).values_list("data", flat=True).first()
    return zoho_time(json.loads(raw).get("event_time")) if raw and raw != "{}" else None


def _cursor_write(when: datetime) -> None:
    SharedState.objects.update_or_create(key=CURSOR_KEY, defaults={"data": json.dumps(
        {"event_time": when.isoformat()})})


def events_replay(*, since: datetime | None = None, client=None) -> ReplayReport:
    """Bring Zoho's events since `since` (default: the cursor, less a small overlap; at most 180 days back) into
    the inbox."""
    with job_lock("zoho: event replay") as held:
        if not held:
            return ReplayReport(busy=True)
        if client is None:
            from zoho_sync.zoho import get_zoho_client

            client = get_zoho_client()
        now = timezone.now()
        cursor = cursor_read()
        start = since or (cursor - OVERLAP if cursor else now - WINDOW)
        report = ReplayReport(since=max(start, now - WINDOW), cursor=cursor)
        newest = cursor
        for page in _pages(client, report):
            listed = [(str(e.get("event_id")), zoho_time(e.get("event_time"))) for e in page if e.get("event_id")]
            wanted = [(event_id, when) for event_id, when in listed if when is None or when >= report.since]
            report.listed += len(wanted)
            known = set(ZohoEvent.objects.filter(event_id__in=[e for e, _ in wanted]).values_list("event_id",
                                                                                                    flat=True))
            report.already += len(known)
            for event_id, when in wanted:
                if event_id not in known:
                    report.calls += 1
                    payload = _payload(client.get(f"/events/{event_id}").get("event") or {})
                    if payload.get("event_id"):
                        event_accept(payload, source=ZohoEvent.Source.REPLAY)
                        report.added.append(event_id)
                if when and (newest is None or when > newest):
                    newest = when
            times = [when for _, when in listed if when]
            descending = all(a >= b for a, b in pairwise(times))
            if times and descending and times[-1] < report.since:
                break  # newest first: the rest is older than asked for
        if newest:
            _cursor_write(newest)
            report.cursor = newest
        return report


def _pages(client, report: ReplayReport):
    page = 1
    while True:
        report.calls += 1
        body = client.get("/events", params={"page": page, "per_page": 200})
        yield body.get("events") or []
        if not (body.get("page_context") or {}).get("has_more_page"):
            return
        page += 1


def _payload(event: dict) -> dict:
    """The event as its webhook carried it: the Events API keeps it as a string (§3.10)."""
    raw = event.get("payload")
    if isinstance(raw, str):
        try:
            data = json.loads(raw)
        except ValueError:
            data = {}
    else:
        data = raw if isinstance(raw, dict) else {}
    data.setdefault("event_id", event.get("event_id"))
    data.setdefault("event_type", event.get("event_type"))
    data.setdefault("event_time", event.get("event_time"))
    return data
