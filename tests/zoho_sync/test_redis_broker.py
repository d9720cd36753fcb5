"""django-q2 on Redis (`Q_BROKER=redis`): tasks due later, moved to the queue once, by whichever cluster polls; and
two real `qcluster` processes on that broker pushing triggered records to the sandbox, each record once.

Needs Redis on 127.0.0.1:6379 (TEST_REDIS_BROKER_URL names another); database 14 is flushed by these tests.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
import redis
from django.db.models import Count

from zoho_sync.brokers import DelayingRedis
from zoho_sync.models import Customer, SyncLog, SyncRun, SyncStatus
from zoho_sync.sync.specs import BY_NAME

from .test_triggers import api_calls, process_env

ROOT = Path(__file__).resolve().parents[2]
REDIS_URL = os.environ.get("TEST_REDIS_BROKER_URL", "redis://127.0.0.1:6379/14")


@pytest.fixture
def redis_db():
    connection = redis.from_url(REDIS_URL)
    try:
        connection.ping()
    except redis.ConnectionError:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"Redis at {REDIS_URL} is not reachable")
    connection.flushdb()
    yield connection
    connection.flushdb()


@pytest.fixture
def broker(redis_db, settings, monkeypatch):
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "REDIS", REDIS_URL)
    return DelayingRedis(list_key=f"test-{uuid.uuid4().hex[:8]}")


def test_a_task_due_later_is_invisible_until_its_time(broker):
    now = time.time()
    broker.enqueue_later("soon", now + 0.5)
    broker.enqueue_later("later", now + 3600)
    assert broker.queue_size() == 2
    assert broker.dequeue() is None  # waited a second on the empty list: nothing was due yet when it looked
    time.sleep(max(0.0, now + 0.6 - time.time()))
    assert broker.dequeue() == [(None, b"soon")]
    assert broker.backlog() == (0, None)
    assert broker.queue_size() == 1  # "later" still waits in the sorted set


def test_due_tasks_are_moved_once_however_many_clusters_poll(broker):
    tasks = [f"task-{n}" for n in range(300)]
    for task in tasks:
        broker.enqueue_later(task, time.time() - 1)
    assert broker.backlog()[1] is not None  # due, and no cluster moved them yet: the health check sees it
    moved = []
    start = threading.Barrier(6)

    def poll():
        start.wait()
        for _ in range(5):
            moved.append(broker.move_due())

    threads = [threading.Thread(target=poll) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(moved) == 300
    queued = [item.decode() for item in broker.connection.lrange(broker.list_key, 0, -1)]
    assert sorted(queued) == sorted(tasks)
    assert broker.backlog() == (300, None)


@pytest.mark.django_db(transaction=True)
def test_two_clusters_on_the_redis_broker_push_each_triggered_record_once(start_cluster, live_sandbox, redis_db):
    debounce = 1.5
    broker_env = {"Q_BROKER": "redis", "REDIS_URL": REDIS_URL, "Q_CLUSTER_NAME": f"test-{uuid.uuid4().hex[:8]}"}
    clusters = [start_cluster(workers=1, debounce=debounce, **broker_env) for _ in range(2)]

    # Another process saves the records, as the web process would: its triggers go to Redis, not the database.
    script = (
        "import time\n"
        "from zoho_sync.models import Customer\n"
        "stamps = []\n"
        "for n in range(24):\n"
        "    c = Customer.objects.create(account_number=f'RB-{n:04d}', email=f'rb{n}@example.com',"
        " first_name='Redis', last_name=f'Broker{n}')\n"
        "    if n == 0:\n"
        "        for phone in ('555-0101', '555-0102', '555-0103'):\n"
        "            c.phone = phone; c.save()\n"
        "    stamps.append(f'SAVED {c.pk} {time.time()}')\n"
        "print('\\n'.join(stamps))\n"
    )
    env = process_env(live_sandbox, **broker_env, SYNC_DEBOUNCE_SECONDS=str(debounce))
    saved = subprocess.run([sys.executable, "manage.py", "shell", "-c", script], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=120)
    assert saved.returncode == 0, saved.stderr
    saved_at = {int(pk): float(at) for _, pk, at in (line.split() for line in saved.stdout.splitlines()
                                                       if line.startswith("SAVED "))}
    assert len(saved_at) == 24

    clusters[0].wait_for("every customer to be synced", lambda: Customer.objects.filter(
        sync_status=SyncStatus.SYNCED).count() == 24, timeout=90)

    remote = live_sandbox.records("customers")
    assert sorted(r["customer_id"] for r in remote) == sorted(Customer.objects.values_list("zoho_id", flat=True))
    creates = [call for call in api_calls(live_sandbox, "POST") if call[1] == "/customers"]
    assert len(creates) == 24  # one create per record, whichever cluster took its task
    first = Customer.objects.get(account_number="RB-0000")
    assert first.phone == "555-0103"
    assert next(r for r in remote if r["customer_id"] == first.zoho_id)["phone"] == "555-0103"
    # The three edits inside the debounce rode along with the create: one push, no update after it.
    attempts = dict(SyncLog.objects.filter(entity=BY_NAME["customer"].name).values_list("object_pk")
                    .annotate(n=Count("pk")))
    assert attempts[str(first.pk)] == 1, attempts
    # Each push ran after its debounce, not at once: the task waited in Redis, no worker slept it out.
    for customer in Customer.objects.all():
        waited = customer.last_synced_at.timestamp() - saved_at[customer.pk]
        assert waited >= debounce - 0.5, (customer.pk, waited)
    # Both clusters took tasks from the one queue: the sync runs' worker processes belong to each cluster's
    # process group (each cluster was started in a session of its own).
    groups = {os.getpgid(pid) for pid in SyncRun.objects.filter(kind=SyncRun.Kind.TRIGGER)
              .values_list("pid", flat=True).distinct()}
    assert groups == {cluster.proc.pid for cluster in clusters}, groups
    assert redis_db.llen(f"django_q:{broker_env['Q_CLUSTER_NAME']}:q") == 0
