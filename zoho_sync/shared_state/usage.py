"""API usage per endpoint (ApiUsage rows), counted in memory per process and written in batches (UsageBuffer).

Readers see it after a flush, which happens every few seconds or calls, at the end of a run
(RateBudget.flush_usage) and at exit. The day's total is not read from there: the shared budget counts every call
when it gives the call its turn (shared_state.budget_calls_today), and that is the figure every page shows.
"""

from __future__ import annotations

import atexit
import logging
import multiprocessing.util
import os
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import date

from django.db import DEFAULT_DB_ALIAS, IntegrityError, connections, transaction
from django.db.models import F

from zoho_sync import shared_state as package  # usage_record is looked up there at call time (tests patch it)
from zoho_sync.models import ApiUsage

logger = logging.getLogger(__name__)


def usage_record(*, organization_id: str, endpoint: str, day: date, calls: int = 1) -> None:
    """Count calls to Zoho for the day (one UPDATE; an INSERT the first time)."""
    rows = ApiUsage.objects.filter(day=day, organization_id=organization_id, endpoint=endpoint)
    if rows.update(calls=F("calls") + calls):
        return
    try:
        with transaction.atomic():
            ApiUsage.objects.create(day=day, organization_id=organization_id, endpoint=endpoint, calls=calls)
    except IntegrityError:
        rows.update(calls=F("calls") + calls)


class UsageBuffer:
    """API calls counted in this process's memory and written to ApiUsage in batches, with the same totals.

    A batch is written when `max_calls` calls wait or the oldest has waited `max_seconds` (checked as calls are
    counted), on flush() (the end of a run), and when the process exits (atexit, and the exit of a
    multiprocessing child, which skips atexit). A forked child starts empty: what the parent counted is the
    parent's to write. Counts are kept per database name, so a count never lands in another database than the
    one it was made against (a test database that is gone by exit time, say): those are dropped.
    A killed process (SIGKILL, or SIGTERM without a handler) loses at most one batch.
    """

    def __init__(self, *, max_calls: int = 100, max_seconds: float = 5.0, clock: Callable[[], float] = time.monotonic):
        self.max_calls, self.max_seconds, self.clock = max_calls, max_seconds, clock
        self._reset()
        os.register_at_fork(after_in_child=self._reset)
        multiprocessing.util.register_after_fork(self, UsageBuffer._watch_exit)

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter = Counter()  # (database name, day, organization id, endpoint) -> calls
        self._waiting, self._since = 0, 0.0

    def _watch_exit(self) -> None:
        multiprocessing.util.Finalize(self, self.flush_at_exit, exitpriority=10)

    @property
    def waiting(self) -> int:
        """Calls counted here and not yet written."""
        return self._waiting

    def add(self, *, organization_id: str, endpoint: str, day: str) -> None:
        database = connections[DEFAULT_DB_ALIAS].settings_dict["NAME"]
        with self._lock:
            if not self._waiting:
                self._since = self.clock()
            self._counts[(str(database), day, organization_id, endpoint)] += 1
            self._waiting += 1
            due = self._waiting >= self.max_calls or self.clock() - self._since >= self.max_seconds
        if due:
            try:
                self.flush()
            except Exception:  # the call itself went through; its count waits for the next flush
                logger.warning("Could not write API usage; it is kept for the next try", exc_info=True)

    def flush(self) -> None:
        """Write every count waiting here (one UPDATE per day and endpoint, an INSERT the first time), in one
        transaction. On failure the counts are kept and the error raised."""
        with self._lock:
            counts, self._counts, self._waiting = self._counts, Counter(), 0
        database = str(connections[DEFAULT_DB_ALIAS].settings_dict["NAME"])
        mine = {key[1:]: n for key, n in counts.items() if key[0] == database}
        if len(mine) < len(counts):  # only tests switch databases
            logger.debug("Dropped %d API call counts made against another database than %s",
                         sum(n for key, n in counts.items() if key[0] != database), database)
        if not mine:
            return
        try:
            with transaction.atomic():
                for (day, organization_id, endpoint), calls in sorted(mine.items()):  # one lock order everywhere
                    package.usage_record(organization_id=organization_id, endpoint=endpoint,
                                         day=date.fromisoformat(day), calls=calls)
        except BaseException:
            with self._lock:
                if not self._waiting:
                    self._since = self.clock()
                self._counts.update({(database, *key): n for key, n in mine.items()})
                self._waiting += sum(mine.values())
            raise

    def flush_at_exit(self) -> None:
        try:
            self.flush()
        except Exception:
            logger.exception("Could not write %d API call counts at exit", self._waiting)


USAGE = UsageBuffer()
atexit.register(USAGE.flush_at_exit)
