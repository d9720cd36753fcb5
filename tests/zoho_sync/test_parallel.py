"""A backfill run by several worker processes: the same result, report and exit code as one process, exactly once;
a dead worker stops the run loudly, and workers stop by themselves when the main process dies.

The in-process tests fork workers from the test process (the sandbox keeps serving from its threads here); the
kill tests run `manage.py zoho_backfill --workers N` as a subprocess, as operations would.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.core.management import call_command

from tests.zoho_sync.test_crash import (
    add_credit_notes,
    assert_local_state,
    assert_one_zoho_object_per_record,
    crash_env,
    expected_outcome,
    manage,
    run_to_completion,
)
from tests.zoho_sync.test_triggers import ROOT
from zoho_sync import services
from zoho_sync.models import SyncLog
from zoho_sync.sandbox import ZohoSandbox
from zoho_sync.sync.parallel import limit_shares
from zoho_sync.sync.specs import SPECS

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def shared_zoho(settings):
    """A system-clock sandbox storing a second customer of the same name (a duplicate would show), no limits;
    the settings point every process's client at it."""
    sandbox = ZohoSandbox(check_duplicate_display_name=False, per_minute=0, daily=0, concurrency=0, seed=3).start()
    config = sandbox.config
    settings.ZOHO_API_BASE_URL, settings.ZOHO_ACCOUNTS_URL = sandbox.base_url, sandbox.accounts_url
    settings.ZOHO_CLIENT_ID, settings.ZOHO_CLIENT_SECRET = config.client_id, config.client_secret
    settings.ZOHO_REFRESH_TOKEN, settings.ZOHO_ORGANIZATION_ID = config.refresh_token, config.organization_id
    settings.ZOHO_RATE_LIMIT_PER_MINUTE, settings.REDIS_URL = 1_000_000, ""
    settings.SYNC_TRIGGERS_ENABLED, settings.SYNC_RETRY_WINDOW_SECONDS = False, 0
    yield sandbox
    sandbox.stop()


def seed(customers: int, seed: int = 5):
    call_command("zoho_seed_demo", customers=customers, seed=seed, reset=True, stdout=io.StringIO())
    add_credit_notes()
    return expected_outcome()


def run_counts(report) -> dict[str, dict[str, int]]:
    return {name: {key: list(entity.last.values()).count(key) for key in set(entity.last.values())}
            for name, entity in report.entities.items()}


def test_workers_push_every_record_once_and_report_as_one_process(shared_zoho):
    expected = seed(40)
    progress = []

    report = services.sync_pending(workers=3, on_progress=progress.append)

    assert_local_state(expected)
    assert_one_zoho_object_per_record(shared_zoho)
    counts = run_counts(report)
    for spec in SPECS:
        # Every record examined once, and counted as the database now holds it.
        assert counts[spec.name].get("created", 0) == len(expected.synced[spec.name]), spec.name
        assert counts[spec.name].get("skipped", 0) == len(expected.skipped[spec.name]), spec.name
        assert counts[spec.name].get("needs_person", 0) == len(expected.invalid[spec.name]), spec.name
        assert counts[spec.name].get("blocked", 0) == len(expected.waiting[spec.name]), spec.name
        assert "waiting" not in counts[spec.name], "workers took the entities in order: nothing waited"
        scope = report.scope[spec.name]
        assert scope["synced"] == len(expected.synced[spec.name]) and scope.get("pending", 0) == 0
    assert report.done == sum(spec.model.objects.count() for spec in SPECS)
    # The calls the workers counted are the calls Zoho received (token mints aside).
    received = sum(n for endpoint, n in shared_zoho.counters()["by_endpoint"].items() if "/oauth/" not in endpoint)
    assert report.calls == received
    # One run: every sync-log row carries its id; the progress line saw every record.
    assert set(SyncLog.objects.values_list("run_id", flat=True)) == {report.run_id}
    assert progress[-1].entity == SPECS[-1].name and sum(
        max(p.done for p in progress if p.entity == spec.name) for spec in SPECS) == report.done
    assert report.stopped == "" and not report.settled, "the demo's invalid records are left for a person"


def test_a_limit_is_shared_out_between_the_workers(shared_zoho):
    seed(20)
    assert limit_shares(10, 3) == [4, 3, 3] and limit_shares(None, 2) == [None, None]

    report = services.sync_pending(entity="customers", workers=3, limit=10)

    assert report.done == 10
    assert SyncLog.objects.count() == 10


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return found


def _start(env: dict, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "manage.py", "zoho_backfill", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _backfill_under_way(sandbox: ZohoSandbox, workers: int):
    """Seed 60 customers' data, start `zoho_backfill --workers N` and wait for its 20th call to Zoho; return what
    should end in Zoho, the environment, the process and its workers' pids."""
    expected = seed(60, seed=2)
    env = crash_env(sandbox)
    proc = _start(env, "--workers", str(workers))
    deadline = time.monotonic() + 30
    while sandbox.counters()["total"] < 20:
        assert proc.poll() is None and time.monotonic() < deadline, "the backfill never got going"
        time.sleep(0.01)
    return expected, env, proc, _children(proc.pid)


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="finds the worker processes through /proc")
def test_a_dead_worker_stops_the_run_loudly_and_the_next_run_finishes_exactly_once(crash_zoho):
    expected, env, proc, workers = _backfill_under_way(crash_zoho, 3)
    assert len(workers) == 3
    os.kill(workers[1], signal.SIGKILL)
    output, _ = proc.communicate(timeout=120)

    assert proc.returncode == 2, output
    assert "Worker" in output and "of 3 ended unexpectedly (exit code -9)" in output, output
    assert "daily quota" not in output.lower() and "The run stopped before the end" in output, output
    run_to_completion(env, expected)
    assert_local_state(expected)
    assert_one_zoho_object_per_record(crash_zoho)


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="finds the worker processes through /proc")
def test_workers_stop_by_themselves_when_the_main_process_dies(crash_zoho):
    expected, env, proc, workers = _backfill_under_way(crash_zoho, 2)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    deadline = time.monotonic() + 20
    while any(Path(f"/proc/{pid}").exists() and "Z" not in Path(f"/proc/{pid}/stat").read_text().split()[2]
              for pid in workers):
        assert time.monotonic() < deadline, "orphaned workers kept running after the main process died"
        time.sleep(0.05)

    done = manage(env, "zoho_backfill", "--workers", "2")
    assert done.returncode in (0, 2), done.stdout + done.stderr
    run_to_completion(env, expected)
    assert_local_state(expected)
    assert_one_zoho_object_per_record(crash_zoho)


def test_workers_are_checked(shared_zoho):
    for bad in ("-1", "11"):
        with pytest.raises(Exception, match=r"--workers .* must be from 1 to 10"):
            call_command("zoho_backfill", "--workers", bad, stdout=io.StringIO())


def test_the_number_of_workers_is_chosen_for_the_database_unless_set(settings):
    from django.db import connection

    settings.SYNC_BACKFILL_WORKERS = 0
    settings.ZOHO_MAX_CONCURRENCY = 3
    chosen = services.backfill_workers()
    if connection.vendor == "sqlite":
        assert chosen == 1, "SQLite takes one writer at a time"
    else:
        assert chosen == min(os.cpu_count() or 1, services.AUTO_WORKERS_MAX, 3)
    settings.SYNC_BACKFILL_WORKERS = 2
    assert services.backfill_workers() == 2
    assert services.backfill_workers(5) == 5


@pytest.mark.django_db(transaction=False)
def test_a_backfill_inside_a_transaction_stays_in_one_process(zoho_settings, zoho_sandbox):
    """Workers have their own connections: they could not see what the caller's transaction has not committed."""
    from tests.builders import make_customer

    zoho_settings.SYNC_TRIGGERS_ENABLED = False
    zoho_sandbox.configure(per_minute=0, daily=0)
    customer = make_customer()
    report = services.sync_pending(workers=3, retry_window=0)
    assert report.entities["customer"].last == {customer.pk: "created"}


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_refused_oauth_client_is_a_configuration_error_whatever_the_workers(shared_zoho, workers):
    """Zoho's token endpoint refusing the client (invalid_client) is the deployment's fault, not a quota stop:
    worker processes report it as one process does (exit 1, the message, no traceback); nothing is pushed."""
    seed(6)
    env = {**crash_env(shared_zoho), "ZOHO_CLIENT_SECRET": "not-the-secret"}
    done = manage(env, "zoho_backfill", "--workers", workers)
    output = done.stdout + done.stderr

    assert done.returncode == 1, output
    assert "Zoho refused the OAuth client (invalid_client): check ZOHO_CLIENT_ID and ZOHO_CLIENT_SECRET" in output
    assert "Traceback" not in output, output
    assert "daily quota" not in output.lower(), output
    assert "not-the-secret" not in output
    assert not shared_zoho.records("customers")
    # Refused credentials need a person, on the record and in the log (issue 19): the first record each process
    # tried says so, and the run stops there instead of trying every other record the same way.
    failures = list(SyncLog.objects.values_list("status", "error_kind"))
    assert 1 <= len(failures) <= int(workers), failures
    assert all(kind == "authentication" and status == SyncLog.Status.FAILED for status, kind in failures), failures
