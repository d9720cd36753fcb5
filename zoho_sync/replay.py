"""Event replay: read Zoho's events list (its last 180 days, §12.12) into the inbox, so a webhook that never
arrived is caught. One machine tails the list at a time (a job lock a dead holder loses) and keeps a cursor (the
newest event time seen), so a scheduled replay resumes where the last one stopped. An event already in the inbox
costs no call and changes nothing; a missing one costs one read and is applied like a webhook.

An event that cannot be read (an error from GET /events/{id}, or an answer without the event) is named with its
error and the cursor stays before it, so the next replay reads it again; the events after it are still added. When
the list itself cannot be read, the cursor does not move at all. An event the inbox refuses (a payload the database
would refuse: inbox.EventRefused) is named too, but does not hold the cursor: reading it again gives the same.

Our own writes are never pulled back, and cost no read: the list says each event's type and time, and a push keeps
Zoho's modified time of what it wrote (sync/pull.py absorb_answer). Listed events of one entity at one second
(Zoho's timestamps are to the second) that are no more than the records of that entity holding Zoho's state of
that second are the echoes of our pushes: settled in the inbox as ignored ("our own write") without
GET /events/{id} and without a record read. So is an event of a type this app mirrors nothing of. Any other event
is read (one call) and applied; one about our own record whose state is already here is still settled without a
record read (inbox._echo).

The replay spends at most SYNC_REPLAY_QUOTA_SHARE of the daily quota (ZOHO_DAILY_LIMIT) in a UTC day, its calls
counted in the shared state: past it, the replay stops with its cursor where it was, says so, and the next replay
(the next day) goes on; the events it had added or settled are in the inbox already and cost nothing again."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import pairwise

from django.utils import timezone

from zoho_sync.client.errors import ZohoError
from zoho_sync.conf import get_inbox_settings, get_zoho_limits
from zoho_sync.entities import BY_NAME
from zoho_sync.inbox import EVENT_ID_MAX, EVENT_TYPE_MAX, EventRefused, event_accept, subject_of
from zoho_sync.models import SharedState, ZohoEvent
from zoho_sync.shared_state import job_lock
from zoho_sync.wire.inbound import zoho_time

logger = logging.getLogger(__name__)
CURSOR_KEY = "inbox:events-cursor"
SPENT_KEY = "inbox:replay-calls"  # + ":YYYY-MM-DD": the calls replays made that day (UTC)
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
    own: int = 0  # echoes of our own pushes, settled from the list without a read
    unmirrored: int = 0  # events of a type this app mirrors nothing of, settled from the list without a read
    share_spent: str = ""  # why the replay stopped early: its share of the daily quota is spent

    @property
    def failed(self) -> bool:
        return bool(self.unread or self.list_error or self.refused)

    def as_text(self) -> str:
        if self.busy:
            return "Another process replays Zoho's events right now; nothing done."
        if self.since is None:  # stopped before the first call
            return self.share_spent or "Nothing done."
        text = (f"Events since {self.since:%Y-%m-%d %H:%M %Z}: {self.listed} listed by Zoho, {self.already} already "
                f"in the inbox, {self.own} our own writes and {self.unmirrored} of a type this app mirrors nothing "
                f"of (settled without a read), {len(self.added)} added and queued to be applied; "
                f"{self.calls} API calls.")
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
        if self.share_spent:
            text += f"\n{self.share_spent}"
        return text

    def as_dict(self) -> dict:
        return {"busy": self.busy, "listed": self.listed, "already": self.already, "added": self.added,
                "api_calls": self.calls, "cursor": self.cursor.isoformat() if self.cursor else None,
                "unread": [{"event_id": event_id, "error": error} for event_id, error in self.unread],
                "list_error": self.list_error or None,
                "refused": [{"event_id": event_id, "reason": reason} for event_id, reason in self.refused],
                "own_writes": self.own, "unmirrored": self.unmirrored, "share_spent": self.share_spent or None}


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
        budget = _Budget(now)
        if not budget.left():
            report = ReplayReport(cursor=cursor, share_spent=budget.spent_text())
            logger.warning("Event replay: %s", report.share_spent)
            return report
        start = since or (cursor - OVERLAP if cursor else now - WINDOW)
        report = ReplayReport(since=max(start, now - WINDOW), cursor=cursor)
        newest = cursor
        unread_at: list[datetime | None] = []  # the times of the events that could not be read
        try:
            for page in _pages(client, report, budget):
                listed = [(str(e.get("event_id")), str(e.get("event_type") or ""), zoho_time(e.get("event_time")))
                          for e in page if e.get("event_id")]
                wanted = [(event_id, kind, when) for event_id, kind, when in listed
                          if when is None or when >= report.since]
                report.listed += len(wanted)
                known = set(ZohoEvent.objects.filter(event_id__in=[e for e, _, _ in wanted]).values_list(
                    "event_id", flat=True))
                report.already += len(known)
                unknown = [(event_id, kind, when) for event_id, kind, when in wanted if event_id not in known]
                settled = _settle_without_read(unknown, report)
                for event_id, _kind, when in unknown:
                    if event_id in settled:
                        continue
                    if not budget.left(report.calls):
                        budget.stopped = True
                        report.share_spent = "stopped"
                        break
                    if not _replay_one(client, event_id, report):
                        unread_at.append(when)
                if report.share_spent:
                    break
                for _, _, when in wanted:
                    if when and (newest is None or when > newest):
                        newest = when
                times = [when for _, _, when in listed if when]
                descending = all(a >= b for a, b in pairwise(times))
                if times and descending and times[-1] < report.since:
                    break  # newest first: the rest is older than asked for
        except ZohoError as error:
            report.list_error = str(error)
            logger.error("Event replay: Zoho's events list could not be read (the cursor stays): %s", error)
            return report
        finally:
            budget.spend(report.calls)
        if budget.stopped:
            # Stopped part-way: the events not reached yet are older than some already seen, so the cursor stays
            # where it was; what this replay added or settled is in the inbox and costs nothing the next time.
            report.share_spent = budget.spent_text()
            logger.warning("Event replay: %s", report.share_spent)
            report.cursor = cursor
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


def _pages(client, report: ReplayReport, budget: _Budget):
    page = 1
    while True:
        if page > 1 and not budget.left(report.calls):
            budget.stopped = True
            return
        report.calls += 1
        body = client.get("/events", params={"page": page, "per_page": 200})
        yield body.get("events") or []
        if not (body.get("page_context") or {}).get("has_more_page"):
            return
        page += 1


class _Budget:
    """The replay's share of the daily quota (SYNC_REPLAY_QUOTA_SHARE of ZOHO_DAILY_LIMIT, read now) and what
    replays spent of it today (UTC), kept in the shared state so every process and every run counts the same."""

    def __init__(self, now: datetime):
        share = get_inbox_settings().replay_quota_share
        self.share = min(max(share, 0.0), 1.0)
        self.limit = get_zoho_limits().daily_limit
        self.allowed = int(self.share * self.limit)
        self.key = f"{SPENT_KEY}:{now:%Y-%m-%d}"
        raw = SharedState.objects.filter(key=self.key).values_list("data", flat=True).first()
        try:
            self.spent = int(json.loads(raw).get("calls", 0)) if raw else 0
        except (ValueError, AttributeError, TypeError):
            self.spent = 0
        self.stopped = False

    def left(self, this_run: int = 0) -> bool:
        return self.spent + this_run < self.allowed

    def spend(self, calls: int) -> None:
        if calls:
            self.spent += calls
            SharedState.objects.update_or_create(key=self.key, defaults={"data": json.dumps({"calls": self.spent})})

    def spent_text(self) -> str:
        return (f"Event replay's share of the daily quota is spent: {self.spent} of {self.allowed} calls today "
                f"(SYNC_REPLAY_QUOTA_SHARE={self.share:g} of ZOHO_DAILY_LIMIT={self.limit}); it stopped with its "
                "cursor kept and goes on after 00:00 UTC.")


def _settle_without_read(unknown: list[tuple[str, str, datetime | None]], report: ReplayReport) -> set[str]:
    """The listed events that need no read, settled in the inbox as ignored: those of a type this app mirrors
    nothing of, and the echoes of our own pushes (for one entity and one second of Zoho's clock, no more events
    than records of ours holding Zoho's state of that second: each push applied Zoho's answer). Returns their ids."""
    now = timezone.now()
    rows: list[ZohoEvent] = []
    groups: dict[tuple[str, datetime], list[tuple[str, str, datetime]]] = {}
    for event_id, kind, when in unknown:
        if len(event_id) > EVENT_ID_MAX or len(kind) > EVENT_TYPE_MAX:
            continue  # read, and named by the inbox's refusal
        subject = subject_of(kind)
        if subject is None:
            report.unmirrored += 1
            rows.append(_settled(event_id, kind, when, "", "ignored: an event type this app mirrors nothing of; "
                                                       "settled from Zoho's events list without a read", now))
        elif when is not None:
            second = when.replace(microsecond=0)
            groups.setdefault((subject.spec.name, second), []).append((event_id, kind, when))
    for (entity, second), events in groups.items():
        model = BY_NAME[entity].model
        ours = model.objects.filter(zoho_modified_at__gte=second,
                                    zoho_modified_at__lt=second + timedelta(seconds=1)).count()
        if len(events) > ours:
            continue  # more events than our writes of that second: each is read
        report.own += len(events)
        said = (f"ignored: our own write: {ours} {entity} record(s) here hold Zoho's state of "
                f"{second:%Y-%m-%d %H:%M:%S %Z}, as our pushes left it; settled from Zoho's events list without a "
                "read")
        rows += [_settled(event_id, kind, when, entity, said, now) for event_id, kind, when in events]
    ZohoEvent.objects.bulk_create(rows, ignore_conflicts=True)
    return {row.event_id for row in rows}


def _settled(event_id: str, kind: str, when: datetime | None, entity: str, outcome: str, now: datetime) -> ZohoEvent:
    return ZohoEvent(event_id=event_id, event_type=kind, event_time=when, source=ZohoEvent.Source.REPLAY,
                     payload={"event_id": event_id, "event_type": kind,
                              "event_time": when.isoformat() if when else None},
                     entity=entity, state=ZohoEvent.State.IGNORED, outcome=outcome, processed_at=now)


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
