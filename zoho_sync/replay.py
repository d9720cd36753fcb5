"""Event replay: read Zoho's events list (its last 180 days, §12.12) into the inbox, so a webhook that never
arrived is caught. One machine tails the list at a time (a job lock a dead holder loses) and keeps a cursor (the
newest event time seen), so a scheduled replay resumes where the last one stopped. An event already in the inbox
costs no call and changes nothing; a missing one costs one read and is applied like a webhook.

An event that cannot be read (an error from GET /events/{id}, or an answer without the event) is named with its
error and the cursor stays before it, so the next replay reads it again; the events after it are still added. When
the list itself cannot be read, the cursor does not move at all. An event the inbox refuses (a payload the database
would refuse: inbox.EventRefused) is named too, but does not hold the cursor: reading it again gives the same."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import pairwise

from django.utils import timezone

from zoho_sync.client.errors import ZohoError
from zoho_sync.inbox import EventRefused, event_accept
from zoho_sync.models import SharedState, ZohoEvent
from zoho_sync.shared_state import job_lock
from zoho_sync.sync.inbound import zoho_time

logger = logging.getLogger(__name__)
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
    unread: list[tuple[str, str]] = field(default_factory=list)  # (event id, why it could not be read)
    list_error: str = ""  # Zoho's events list could not be read (from the page it failed on)
    refused: list[tuple[str, str]] = field(default_factory=list)  # (event id, why the inbox refused it)

    @property
    def failed(self) -> bool:
        return bool(self.unread or self.list_error or self.refused)

    def as_text(self) -> str:
        if self.busy:
            return "Another process replays Zoho's events right now; nothing done."
        text = (f"Events since {self.since:%Y-%m-%d %H:%M %Z}: {self.listed} listed by Zoho, {self.already} already "
                f"in the inbox, {len(self.added)} added and queued to be applied; {self.calls} API calls.")
        text += f" Cursor now {self.cursor:%Y-%m-%d %H:%M:%S %Z}." if self.cursor else ""
        if self.list_error:
            text += (f"\nZoho's events list could not be read: {self.list_error}. The cursor did not move: run "
                     "again once Zoho answers.")
        for event_id, error in self.unread:
            text += f"\nEvent {event_id} could not be read: {error}."
        if self.unread:
            text += (f"\n{len(self.unread)} event(s) not replayed; the cursor stays before them: run again once "
                     "Zoho answers.")
        for event_id, reason in self.refused:
            text += f"\nEvent {event_id} was refused by the inbox: {reason} (see it in Zoho's Events tab)."
        return text

    def as_dict(self) -> dict:
        return {"busy": self.busy, "listed": self.listed, "already": self.already, "added": self.added,
                "api_calls": self.calls, "cursor": self.cursor.isoformat() if self.cursor else None,
                "unread": [{"event_id": event_id, "error": error} for event_id, error in self.unread],
                "list_error": self.list_error or None,
                "refused": [{"event_id": event_id, "reason": reason} for event_id, reason in self.refused]}


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
        unread_at: list[datetime | None] = []  # the times of the events that could not be read
        try:
            for page in _pages(client, report):
                listed = [(str(e.get("event_id")), zoho_time(e.get("event_time"))) for e in page
                          if e.get("event_id")]
                wanted = [(event_id, when) for event_id, when in listed if when is None or when >= report.since]
                report.listed += len(wanted)
                known = set(ZohoEvent.objects.filter(event_id__in=[e for e, _ in wanted]).values_list(
                    "event_id", flat=True))
                report.already += len(known)
                for event_id, when in wanted:
                    if event_id not in known and not _replay_one(client, event_id, report):
                        unread_at.append(when)
                    if when and (newest is None or when > newest):
                        newest = when
                times = [when for _, when in listed if when]
                descending = all(a >= b for a, b in pairwise(times))
                if times and descending and times[-1] < report.since:
                    break  # newest first: the rest is older than asked for
        except ZohoError as error:
            report.list_error = str(error)
            logger.error("Event replay: Zoho's events list could not be read (the cursor stays): %s", error)
            return report
        if unread_at:
            # The cursor goes just before the oldest event not read (back, if need be), so the next replay lists it
            # again; an event Zoho gave no time for keeps the cursor where it was.
            times = [when for when in unread_at if when is not None]
            newest = min([newest, *[when - timedelta(seconds=1) for when in times]]) \
                if len(times) == len(unread_at) else cursor
        if newest and newest != cursor:
            _cursor_write(newest)
        report.cursor = newest or cursor
        return report


def _replay_one(client, event_id: str, report: ReplayReport) -> bool:
    """Read one event Zoho lists and the inbox lacks, and accept it; False (and why, on the report) when Zoho's
    answer could not be read."""
    report.calls += 1
    try:
        event = client.get(f"/events/{event_id}").get("event")
    except ZohoError as error:
        report.unread.append((event_id, str(error)))
        logger.error("Event replay: event %s could not be read (the cursor stays before it): %s", event_id, error)
        return False
    if not isinstance(event, dict) or not event.get("event_id"):
        report.unread.append((event_id, "Zoho's answer carries no event"))
        logger.error("Event replay: Zoho's answer for event %s carries no event (the cursor stays before it)",
                     event_id)
        return False
    try:
        event_accept(_payload(event), source=ZohoEvent.Source.REPLAY)
    except EventRefused as refused:  # read, but not storable: the same answer every time, so it holds nothing
        report.refused.append((event_id, str(refused)))
        logger.error("Event replay: event %s was refused by the inbox: %s", event_id, refused)
        return True
    report.added.append(event_id)
    return True


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
