"""One backfill run by several worker processes: Python does one thing at a time per process, and a push spends
most of its time in Python or waiting for the database or Zoho, so workers overlap those waits and use every core.

The workers are forks of this process, each a BackfillRun with its own database connection and Zoho client, and
they share what the one-process run has: the run id, the claims (a record is pushed by one worker at a time), the
rate budget and the token cache. They take the entities in dependency order together: a worker that finds nothing
more of an entity to claim waits for the others at a barrier, so no subscription waits for a customer another
worker is still pushing. Every record's result comes back here, where the one report and the progress line are
kept; so the summary, the exit code and the state table read as for one process.

A worker that dies (SIGKILL, out of memory) ends the run as stopped, so the command exits 2; its claims are taken
back at once (its process is gone) and the next run pushes what it held; the others go on. A configuration error in
a worker (Zoho refusing the OAuth client, a missing setting) is the deployment's, the same for every worker: it is
raised here, as one process raises it, so the command says the same (exit 1, no traceback). Workers stop by
themselves when this process dies (their pipe breaks). Each worker takes an even share of `limit`.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import multiprocessing.connection
import os
import pickle
import time
import uuid
from collections.abc import Callable
from datetime import datetime

from django.db import connections
from django.utils import timezone

from zoho_sync.client.budget import BudgetStats
from zoho_sync.conf import ZohoConfigurationError
from zoho_sync.entities import BY_NAME, EntitySpec
from zoho_sync.sync import claims
from zoho_sync.sync.backfill import BackfillRun, EntityReport, Progress, SyncReport

logger = logging.getLogger(__name__)
PARALLEL_MAX_BATCH = 200  # smaller batches than one process takes, so workers end an entity close together


class ParentGone(Exception):
    """The process that started this worker is gone: nobody reads its results, so it stops."""


def limit_shares(limit: int | None, workers: int) -> list[int | None]:
    """Each worker's share of `limit` (the shares add up to it), or no limit for any."""
    if limit is None:
        return [None] * workers
    return [limit // workers + (index < limit % workers) for index in range(workers)]


class ParallelBackfill:
    """Run a backfill over `specs` with `workers` processes; `client_factory` builds each worker's Zoho client.

    Each worker talks to this process over its own pipe (nothing is shared that a killed worker could leave
    locked): it sends every record's result, and "entity done" when it finds nothing more of an entity to claim;
    this process answers "go on" once every live worker has said so.
    """

    def __init__(self, *, specs: tuple[EntitySpec, ...], workers: int, client_factory: Callable[[], object],
                 batch_size: int = 100, limit: int | None = None, since: datetime | None = None,
                 retry_window: float = 300.0, on_progress: Callable[[Progress], None] | None = None,
                 barrier_timeout: float = 900.0, run_id: str | None = None):
        self.specs, self.workers, self.client_factory = specs, workers, client_factory
        self.batch_size, self.limit, self.since, self.retry_window = batch_size, limit, since, retry_window
        self.on_progress, self.barrier_timeout = on_progress, barrier_timeout
        self.run_id = run_id or uuid.uuid4().hex
        self.report = SyncReport(run_id=self.run_id, started=timezone.now())
        self.stats = BudgetStats()  # the workers' budget figures, added up
        self.processes: list = []
        self.configuration_error: ZohoConfigurationError | None = None  # a worker's, raised by run()

    def run(self) -> SyncReport:
        started = time.monotonic()
        probe = BackfillRun(specs=self.specs, client=None, since=self.since)
        for spec in self.specs:  # the due counts the progress line shows, read once here
            self.report.entities[spec.name] = EntityReport(spec.name, due=probe.prepare(spec))
        connections.close_all()  # the workers must not share this process's database connections
        context = multiprocessing.get_context("fork")
        pipes = [context.Pipe() for _ in range(self.workers)]
        shares = limit_shares(self.limit, self.workers)
        for index, (_, theirs) in enumerate(pipes):
            others = [end for pair in pipes for end in pair if end is not theirs]
            self.processes.append(context.Process(
                target=_work, name=f"zoho-backfill-worker-{index + 1}", daemon=False,
                args=(index, theirs, others, self._work_options(shares[index]), self.barrier_timeout)))
        try:
            for process in self.processes:
                process.start()
            for _, theirs in pipes:
                theirs.close()
            self._collect([mine for mine, _ in pipes], started)
        except BaseException:
            for process in self.processes:
                if process.is_alive():
                    process.terminate()
            raise
        finally:
            for mine, _ in pipes:
                mine.close()
            for process in self.processes:
                process.join(timeout=60)
            for spec in self.specs:
                claims.reclaim_dead(spec)  # a worker that died left claims: due again at once
            self.report.seconds = time.monotonic() - started
        if self.configuration_error is not None:
            raise self.configuration_error  # what one process raises: the settings, not this run, are wrong
        return self.report

    def _work_options(self, limit: int | None) -> dict:
        return {"run_id": self.run_id, "specs": [spec.name for spec in self.specs], "batch_size": self.batch_size,
                "limit": limit, "since": self.since, "retry_window": self.retry_window,
                "client_factory": self.client_factory}

    def _collect(self, conns: list, started: float) -> None:
        ended: dict[int, dict] = {}
        waiting: dict[str, set[int]] = {}  # entity -> workers done with it, waiting for the others
        live = dict(enumerate(conns))
        while live:
            for conn in multiprocessing.connection.wait(list(live.values())):
                index = conns.index(conn)
                try:
                    message = conn.recv()
                except (EOFError, OSError):  # it is gone, with or without its last word
                    del live[index]
                    self.processes[index].join(timeout=10)
                    ended.setdefault(index, {"died": self.processes[index].exitcode})
                    self._release_waiters(waiting, live)
                    continue
                if message[0] == "outcome":
                    _, entity, pk, key, kind, reason, batch = message
                    report = self.report.entities[entity]
                    report.record(pk, key, kind, reason)
                    self._progress(entity, report, batch, started)
                elif message[0] == "entity done":
                    waiting.setdefault(message[1], set()).add(index)
                    self._release_waiters(waiting, live)
                elif message[0] == "end":
                    ended[index] = message[1]
        self._merge_ends(ended)

    @staticmethod
    def _release_waiters(waiting: dict[str, set[int]], live: dict) -> None:
        """Every live worker done with an entity: let them all go on to the next."""
        for entity, done in list(waiting.items()):
            if set(live) <= done:
                for index in done & set(live):
                    with contextlib.suppress(OSError):
                        live[index].send(("go on", entity))
                del waiting[entity]

    def _merge_ends(self, ended: dict[int, dict]) -> None:
        stops = []
        for index, end in sorted(ended.items()):
            self.report.calls += end.get("calls", 0)
            self.stats.rate_limited += end.get("rate_limited", 0)
            self.stats.wait_seconds += end.get("wait_seconds", 0.0)
            if "configuration" in end:
                self.configuration_error = self.configuration_error or end["configuration"]
            elif "died" in end:
                stops.append(f"Worker {index + 1} of {self.workers} ended unexpectedly (exit code {end['died']}); "
                             "what it held is due again: run the backfill again.")
            elif end.get("error"):
                stops.append(f"Worker {index + 1} of {self.workers} failed: {end['error']}")
            elif end.get("stopped"):
                stops.append(end["stopped"])
                resume_at = end["resume_at"]
                if resume_at and (self.report.resume_at is None or resume_at > self.report.resume_at):
                    self.report.resume_at = resume_at
        self.report.stopped = " ".join(dict.fromkeys(stops))  # the quota stops every worker with one message

    def _progress(self, entity: str, report: EntityReport, batch: int, started: float) -> None:
        if not self.on_progress:
            return
        elapsed = max(1e-6, time.monotonic() - started)
        rate = self.report.done / elapsed
        due = max(report.due, report.done)
        left = max(0, due - report.done)
        self.on_progress(Progress(entity, report.done, due, report.failed, rate, left / rate if rate else None,
                                  batch))


# The database connections a worker inherited from its parent, held until the worker ends: it must not use them (the
# parent, or another worker, talks on the same socket) and must not close them (closing sends PostgreSQL a
# Terminate on that socket, which ends the parent's session). A worker ends with os._exit, so nothing here is ever
# finalised.
_INHERITED: list = []


def _forget_inherited_database_connections() -> None:
    """Drop, without closing, every database connection this forked worker inherited. The parent closes its own
    before forking, but only those of its current context: under a running asyncio loop (Playwright's, in the
    browser tests) Django keeps the thread's older connection elsewhere, open, and a worker would share it."""
    for alias in connections:
        wrapper = connections[alias]
        if wrapper.connection is not None:
            _INHERITED.append(wrapper.connection)
            wrapper.connection = None


def _work(index: int, conn, others: list, options: dict, barrier_timeout: float) -> None:
    """A worker process: one BackfillRun, every record's result sent back to the main process."""
    from zoho_sync import zoho

    for end in others:  # the main process's ends, and the other workers': a pipe ends when its owner dies
        end.close()
    zoho.forget_clients(close=False)  # the parent's client and its connections are the parent's
    _forget_inherited_database_connections()
    sizes = {"batch": options["batch_size"]}

    def send(message) -> None:
        try:
            conn.send(message)
        except OSError as error:  # BrokenPipeError: the main process is gone
            raise ParentGone("The backfill's main process is gone; this worker stops.") from error

    def on_outcome(entity: str, pk: int, key: str, kind: str, reason: str) -> None:
        send(("outcome", entity, pk, key, kind, reason, sizes["batch"]))

    def between_entities(entity: str) -> None:
        send(("entity done", entity))
        deadline = time.monotonic() + barrier_timeout
        while time.monotonic() < deadline:
            try:
                if conn.poll(min(1.0, barrier_timeout)) and conn.recv() == ("go on", entity):
                    return
            except (EOFError, OSError) as error:
                raise ParentGone("The backfill's main process is gone; this worker stops.") from error
        logger.warning("Waited %.0f s for the other workers to finish %s; going on", barrier_timeout, entity)

    client = None
    try:
        client = options["client_factory"]()
        run = BackfillRun(specs=tuple(BY_NAME[name] for name in options["specs"]), client=client,
                          batch_size=options["batch_size"], limit=options["limit"], since=options["since"],
                          retry_window=options["retry_window"], run_id=options["run_id"], on_outcome=on_outcome,
                          between_entities=between_entities, max_batch=PARALLEL_MAX_BATCH,
                          on_progress=lambda p: sizes.__setitem__("batch", p.batch_size))
        report = run.run()
        client.budget.flush_usage()
        end = {"calls": report.calls, "stopped": report.stopped, "resume_at": report.resume_at,
               "rate_limited": client.budget.stats.rate_limited, "wait_seconds": client.budget.stats.wait_seconds}
    except ParentGone:
        if client is not None:
            client.budget.flush_usage()
        os._exit(0)  # quietly: the run gave its claims back as it stopped
    except ZohoConfigurationError as error:  # the settings: the main process raises it as one process would
        if client is not None:
            client.budget.flush_usage()
        end = {"configuration": _portable(error)}
    except BaseException as error:  # reported to the main process, which says so in the summary
        logger.exception("Backfill worker %d failed", index + 1)
        end = {"error": f"{type(error).__name__}: {error}"}
    finally:
        connections.close_all()
    with contextlib.suppress(OSError):
        conn.send(("end", end))
    conn.close()


def _portable(error: ZohoConfigurationError) -> ZohoConfigurationError:
    """The error itself when it crosses the pipe intact (its class and message), else one with its message."""
    try:
        copy = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own object, round-tripped in this process
    except Exception:  # an attribute that does not pickle: the message is what the command prints
        return ZohoConfigurationError(str(error))
    return copy if str(copy) == str(error) else ZohoConfigurationError(str(error))
