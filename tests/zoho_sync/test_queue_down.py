"""The task queue down while records are saved (Redis stopped on the Redis broker; the ORM broker's table gone):
no save raises, the records stay pending, the outage is logged once, and once the broker is back the next save
queues at once, a real cluster pushes it, and the "push pending" sweep and "Push to Zoho now" push the rest.

The Redis tests run a private redis-server on a free port (stopped and started again on that port); they need
the redis-server binary.
"""

from __future__ import annotations

import logging
import shutil
import socket
import subprocess
import time
import uuid

import pytest
import redis
from django.contrib import admin
from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone
from django_q.models import OrmQ
from django_q.signing import SignedPackage

from monitoring.heartbeat import cluster_heartbeat
from tests.builders import make_customer
from zoho_sync import inbox, queueing, services, tasks
from zoho_sync.models import Customer, SyncStatus, ZohoEvent
from zoho_sync.sync.claims import left_to_triggers

from .test_triggers import api_calls

CHECKBOX = admin.helpers.ACTION_CHECKBOX_NAME


class QueueLog(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        self.records.append(record)

    def at(self, level: int) -> list[str]:
        return [r.getMessage() for r in self.records if r.levelno == level]


@pytest.fixture
def queue_log(monkeypatch):
    """What zoho_sync.queueing logs (the project's logging does not propagate zoho_sync to the root), with the
    outage state of a fresh process."""
    monkeypatch.setattr(queueing, "outage", queueing._Outage())
    handler = QueueLog()
    logger = logging.getLogger("zoho_sync.queueing")
    logger.addHandler(handler)
    previous = logger.level
    logger.setLevel(logging.DEBUG)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(previous)


@pytest.fixture
def triggers(settings):
    settings.SYNC_TRIGGERS_ENABLED = True
    settings.SYNC_DEBOUNCE_SECONDS = 0.5
    return settings


def pending_unflagged(pks) -> bool:
    rows = Customer.objects.filter(pk__in=pks)
    return (rows.count() == len(pks) and all(r.sync_status == SyncStatus.PENDING for r in rows)
            and not rows.filter(push_queued_at__isnull=False).exists())


def run_task(payload) -> str:
    """Run a queued django-q2 task here, as a worker runs it: its signed package, its function, its arguments."""
    task = SignedPackage.loads(payload)
    module, name = task["func"].rsplit(".", 1)
    assert module == "zoho_sync.tasks", task["func"]
    return getattr(tasks, name)(*task["args"])


# --- Redis ------------------------------------------------------------------------------------------------------
class PrivateRedis:
    """A redis-server of this test's own, on a free port, that the test stops and starts again."""

    def __init__(self):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None

    def start(self) -> PrivateRedis:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                redis.from_url(self.url).ping()
                return self
            except redis.ConnectionError:
                assert time.monotonic() < deadline and self.proc.poll() is None, "redis-server did not start"
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.proc = None


@pytest.fixture
def private_redis():
    if not shutil.which("redis-server"):
        pytest.skip("needs the redis-server binary")
    server = PrivateRedis().start()
    yield server
    server.stop()


@pytest.fixture
def redis_broker(private_redis, monkeypatch):
    """This process's django-q2 on the Redis broker (`Q_BROKER=redis`), on the private server."""
    from django_q.conf import Conf

    name = f"test-down-{uuid.uuid4().hex[:8]}"
    monkeypatch.setattr(Conf, "BROKER_CLASS", "zoho_sync.brokers.DelayingRedis")
    monkeypatch.setattr(Conf, "REDIS", private_redis.url)
    monkeypatch.setattr(Conf, "ORM", None)
    monkeypatch.setattr(Conf, "CLUSTER_NAME", name)
    monkeypatch.setattr(Conf, "PREFIX", name)  # the cluster's name salts the packages' signatures
    queueing._delaying_broker.cache_clear()
    yield {"Q_BROKER": "redis", "REDIS_URL": private_redis.url, "Q_CLUSTER_NAME": name}
    queueing._delaying_broker.cache_clear()


@pytest.mark.django_db(transaction=True)
def test_redis_down_during_saves_then_back(private_redis, redis_broker, queue_log, triggers, start_cluster,
                                           live_sandbox):
    private_redis.stop()  # Redis goes away under the web process

    customers = [make_customer() for _ in range(12)]  # autocommit: each save queues on commit, and none raises
    first = customers[0]
    for phone in ("555-0101", "555-0102", "555-0103"):
        first.phone = phone
        first.save()
    pks = [c.pk for c in customers]

    assert pending_unflagged(pks), "the records stay pending, with no trigger flag left to block the next one"
    errors = queue_log.at(logging.ERROR)
    assert len(errors) == 1, errors  # one line for the burst of 15 saves, not one per save
    assert "The task queue (Redis) did not take 'zoho push customer" in errors[0]
    assert "ConnectionError" in errors[0] and "the record stays due" in errors[0]
    assert queueing.outage.failures == 15

    private_redis.start()  # the broker is back
    first.phone = "555-0199"
    first.save()  # the next save queues at once
    first.refresh_from_db()
    assert first.push_queued_at is not None
    later = redis.from_url(private_redis.url).zcard(f"django_q:{redis_broker['Q_CLUSTER_NAME']}:q:later")
    assert later == 1
    assert any("takes tasks again: 15 were not queued" in m for m in queue_log.at(logging.WARNING))

    # A real cluster on the same Redis pushes it to Zoho.
    cluster = start_cluster(debounce=0.5, **redis_broker)
    cluster.wait_for("the re-queued customer to be synced", lambda: Customer.objects.filter(
        pk=first.pk, sync_status=SyncStatus.SYNCED).exists(), timeout=60)
    remote = live_sandbox.records("customers")
    assert [r["phone"] for r in remote] == ["555-0199"]

    # The "push pending" sweep, with that cluster alive (so it leaves records with a queued trigger to their
    # trigger), pushes the eleven others at once: no stale flag holds them back.
    cluster_heartbeat()
    assert left_to_triggers(timezone.now()) is not None
    config = live_sandbox.config
    triggers.ZOHO_API_BASE_URL, triggers.ZOHO_ACCOUNTS_URL = live_sandbox.base_url, live_sandbox.accounts_url
    triggers.ZOHO_CLIENT_ID, triggers.ZOHO_CLIENT_SECRET = config.client_id, config.client_secret
    triggers.ZOHO_REFRESH_TOKEN, triggers.ZOHO_ORGANIZATION_ID = config.refresh_token, config.organization_id
    triggers.ZOHO_RATE_LIMIT_PER_MINUTE, triggers.REDIS_URL = 1_000_000, ""
    said = tasks.backfill("all")
    assert said.startswith("11 records, 0 failed"), said
    assert Customer.objects.filter(pk__in=pks, sync_status=SyncStatus.SYNCED).count() == 12
    creates = [call for call in api_calls(live_sandbox, "POST") if call[1] == "/customers"]
    assert len(creates) == 12 and len(live_sandbox.records("customers")) == 12


# --- the ORM broker ---------------------------------------------------------------------------------------------
@pytest.fixture
def orm_queue_broken(transactional_db):
    """The ORM broker's writes fail: its table is renamed away (as a lost table, a lock or a full disk would make
    them fail), and put back by `restore()` or at the end."""
    table = OrmQ._meta.db_table
    state = {"broken": False}

    def rename(old: str, new: str) -> None:
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER TABLE {connection.ops.quote_name(old)} RENAME TO {connection.ops.quote_name(new)}")

    def restore() -> None:
        if state["broken"]:
            rename(f"{table}_away", table)
            state["broken"] = False

    rename(table, f"{table}_away")
    state["broken"] = True
    yield restore
    restore()


@pytest.mark.django_db(transaction=True)
def test_the_orm_broker_failing_during_saves_then_back(orm_queue_broken, queue_log, triggers, admin_client,
                                                       zoho_settings, zoho_sandbox):
    zoho_sandbox.configure(per_minute=0)
    customers = [make_customer() for _ in range(4)]
    pks = [c.pk for c in customers]
    assert pending_unflagged(pks)
    assert len(queue_log.at(logging.ERROR)) == 1
    assert "The task queue (the ORM broker (the database)) did not take" in queue_log.at(logging.ERROR)[0]

    # Inside a transaction the failed write leaves the transaction usable (a savepoint; PostgreSQL would refuse
    # every later statement), and the caller's work commits.
    with transaction.atomic():
        customers[1].first_name = "Changed"
        customers[1].save()
        assert services.sync_enqueue(entity="customer", pk=customers[1].pk, delay=0) is False
        assert Customer.objects.filter(first_name="Changed").count() == 1
    assert Customer.objects.get(pk=customers[1].pk).first_name == "Changed"
    assert pending_unflagged(pks)

    # "Retry all" in the admin says the queue is down instead of answering 500.
    retry_all = admin_client.post(reverse("admin:zoho_sync_syncfailure_retry_all"),
                                  {"entity": "customer", "confirm": "yes"}, follow=True)
    assert retry_all.status_code == 200
    assert any("task queue is unreachable" in str(m.message) for m in retry_all.context["messages"])

    orm_queue_broken()  # the broker is back
    customers[0].last_name = "Back"
    customers[0].save()  # the next save queues at once; the task, run as a worker runs it, pushes it
    queued = OrmQ.objects.get()
    assert queued.lock > timezone.now() - timezone.timedelta(seconds=5)
    assert run_task(queued.payload).startswith(f"customer {customers[0].pk}: create")
    assert any("takes tasks again" in m for m in queue_log.at(logging.WARNING))

    # "Push to Zoho now" on the others, through the admin.
    response = admin_client.post(reverse("admin:zoho_sync_customer_changelist"),
                                 {"action": "push_now", CHECKBOX: pks[1:]}, follow=True)
    assert "3 record(s) pushed to Zoho." in [str(m.message) for m in response.context["messages"]]
    assert Customer.objects.filter(pk__in=pks, sync_status=SyncStatus.SYNCED).count() == 4
    assert sorted(r["last_name"] for r in zoho_sandbox.records("customers"))[0] == "Back"


@pytest.mark.django_db(transaction=True)
def test_many_pushed_now_while_the_queue_is_down_are_said_not_queued(orm_queue_broken, queue_log, triggers,
                                                                    admin_client, zoho_settings):
    triggers.SYNC_TRIGGERS_ENABLED = False
    pks = [make_customer().pk for _ in range(services.PUSH_NOW_LIMIT + 1)]
    response = admin_client.post(reverse("admin:zoho_sync_customer_changelist"),
                                 {"action": "push_now", CHECKBOX: pks}, follow=True)
    texts = [str(m.message) for m in response.context["messages"]]
    assert any(t.startswith(f"{len(pks)} record(s) could not be queued: the task queue is unreachable")
               for t in texts), texts
    assert not any("queued; they are pushed in the background" in t for t in texts), texts
    assert pending_unflagged(pks)
    assert len(queue_log.at(logging.ERROR)) == 1


@pytest.mark.django_db(transaction=True)
def test_inbox_events_are_kept_while_the_queue_is_down_and_swept_after(orm_queue_broken, queue_log):
    event, new = inbox.event_accept({"event_id": "ev-queue-down", "event_type": "payment_thankyou",
                                     "data": {"payment": {"payment_id": "9001"}}}, source="webhook")
    assert new and ZohoEvent.objects.get(pk=event.pk).state == ZohoEvent.State.RECEIVED
    assert len(queue_log.at(logging.ERROR)) == 1
    ZohoEvent.objects.filter(pk=event.pk).update(received_at=timezone.now() - timezone.timedelta(minutes=2))
    assert inbox.events_sweep() == 0  # nothing taken while the queue is down: the event waits in the inbox

    orm_queue_broken()
    assert inbox.events_sweep() == 1
    assert OrmQ.objects.get().func() == inbox.TASK
