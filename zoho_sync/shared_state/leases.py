"""Leases held against every process of the deployment: shared_lease for a short critical section, job_lock and
single_run for a scheduled job that must never run twice at once. Each is a SharedState row taken and given back
by compare-and-set, so no transaction is held while the holder talks to Zoho."""

from __future__ import annotations

import contextlib
import functools
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass

from django.db import connections

from zoho_sync.shared_state.backends import DatabaseStateBackend, StateCodec


@dataclass
class LeaseState:
    holder: str = ""
    until: float = 0.0

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict | None) -> LeaseState:
        return cls(**{k: v for k, v in (data or {}).items() if k in ("holder", "until")})


LEASES = DatabaseStateBackend("lease", StateCodec(LeaseState))


class LeaseBusyError(Exception):
    """Another process held the lease for longer than we would wait."""


@contextlib.contextmanager
def shared_lease(name: str, *, seconds: float = 60.0, wait: float = 60.0) -> Iterator[None]:
    """Hold `name` against every other process of the deployment (compare-and-set on a SharedState row; no
    transaction is held while the caller talks to Zoho). A holder that dies frees it when `seconds` run out."""
    holder = f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    deadline = time.monotonic() + wait

    def take(state: LeaseState):
        now = time.time()
        if state.holder and state.holder != holder and state.until > now:
            return state, False
        return LeaseState(holder, now + seconds), True

    while not LEASES.update(name, take):
        if time.monotonic() > deadline:
            raise LeaseBusyError(f"{name!r} is held by another process")
        time.sleep(0.1)
    try:
        yield
    finally:
        LEASES.update(name, lambda state: (LeaseState(), None) if state.holder == holder else (state, None))


@contextlib.contextmanager
def job_lock(name: str, *, seconds: float = 120.0) -> Iterator[bool]:
    """Hold `name` while a scheduled job runs, however long it runs; yields False (and holds nothing) when another
    run of the job holds it. The holder renews it every quarter of `seconds` from a thread; a holder that dies
    frees it at once when it ran on this machine (its process is gone), else when `seconds` run out."""
    from zoho_sync.client.budget import holder_is_dead

    key = f"job:{name}"
    holder = f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    def take(state: LeaseState):
        now = time.time()
        if state.holder and state.holder != holder and state.until > now and not holder_is_dead(state.holder):
            return state, False
        return LeaseState(holder, now + seconds), True

    if not LEASES.update(key, take):
        yield False
        return
    stop = threading.Event()

    def renew() -> None:
        try:
            while not stop.wait(seconds / 4):
                LEASES.update(key, take)
        finally:
            connections.close_all()

    renewer = threading.Thread(target=renew, name=f"lock {name}", daemon=True)
    renewer.start()
    try:
        yield True
    finally:
        stop.set()
        renewer.join(timeout=10)
        LEASES.update(key, lambda state: (LeaseState(), None) if state.holder == holder else (state, None))


def single_run(name: str):
    """A scheduled task that never runs twice at once: a second start while one runs returns at once, saying so."""
    def decorate(task):
        @functools.wraps(task)
        def wrapper(*args, **kwargs):
            with job_lock(name) as held:
                if not held:
                    return f"skipped: another run of {name!r} is in progress"
                return task(*args, **kwargs)
        return wrapper
    return decorate
