"""README's steps after the demo spend next to nothing: the demo's Zoho started as README says
(`manage.py zoho_sandbox --demo`, its own process), the demo itself (`zoho_demo`, a small seed) on the test
database, then `zoho_schedules` and a real `manage.py qcluster` with the settings the demo writes to .env, for two
minutes. Every schedule falls due at once (the event replay among them, with the events all our pushes caused);
the API calls they spend, counted by the sandbox itself, stay under a small bound. Before issue 19 the replay read
every one of those events and its record again (two calls an event), and the demo's .env left the budget at
real Zoho's 1,000 a day."""

from __future__ import annotations

import contextlib
import io
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from django.core.management import call_command
from django.db import connection

from zoho_sync.demo_sandbox import demo_env
from zoho_sync.models import Customer, SyncLog, ZohoEvent

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
ROOT = Path(__file__).resolve().parents[2]
RUN_SECONDS = 120  # the two minutes: every schedule runs at least once in them
BOUND = 30  # API calls the cluster may spend in them, all schedules together
CUSTOMERS = 20


def database_url() -> str:
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    credentials = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{credentials}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def clean_env(**extra: str) -> dict[str, str]:
    """This machine's environment without any Zoho or database setting of the test run, and no .env: the
    processes get exactly what the demo's .env says (and the test database)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ZOHO_", "SYNC_", "DATABASE_URL", "Q_",
                                                                         "DJANGO_SETTINGS_MODULE", "REDIS_URL"))}
    return {**env, "DJANGO_ENV_FILE": "/nonexistent/.env", "PYTHONUNBUFFERED": "1", **extra}


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=15)
    with contextlib.suppress(ProcessLookupError):  # whatever it left behind, in its own session
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


@pytest.fixture
def demo_sandbox(tmp_path):
    """`manage.py zoho_sandbox --demo`, as README's next steps start it (a free port and its own state file, so it
    never meets a developer's demo); yields its port."""
    log = tmp_path / "sandbox.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "manage.py", "zoho_sandbox", "--demo", "--port", "0", "--state-file",
                                 str(tmp_path / "sandbox-state.json")], cwd=ROOT, env=clean_env(), stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while not (found := re.search(r"listening on http://127\.0\.0\.1:(\d+)", log.read_text())):
            assert proc.poll() is None and time.monotonic() < deadline, f"the sandbox did not start:\n{log.read_text()}"
            time.sleep(0.1)
        yield int(found.group(1))
    finally:
        stop(proc)


def calls(port: int) -> int:
    """The requests the sandbox answered, by its own counter (the token endpoint's too)."""
    return requests.get(f"http://127.0.0.1:{port}/__sandbox__/counters", timeout=5).json()["counters"]["total"]


def test_readmes_steps_after_the_demo_spend_next_to_nothing(demo_sandbox, settings, tmp_path):
    port = demo_sandbox
    dotenv = demo_env(port)  # what ./bin/demo writes to .env
    assert (dotenv["ZOHO_RATE_LIMIT_PER_MINUTE"], dotenv["ZOHO_DAILY_LIMIT"]) == ("6000", "1000000")
    for key, value in dotenv.items():  # this process reads them as the app does
        setattr(settings, key, int(value) if value.isdigit() and "ID" not in key else value)
    settings.REDIS_URL, settings.SYNC_TRIGGERS_ENABLED = "", False  # the demo's own pushes queue nothing

    said = io.StringIO()
    call_command("zoho_demo", customers=CUSTOMERS, sandbox_port=port, stdout=said, stderr=said)
    assert "zoho_sandbox --demo" in said.getvalue()  # its last words start the demo's Zoho
    assert Customer.objects.count() == CUSTOMERS
    pushed = SyncLog.objects.filter(direction="push", status="success", action="create").count()
    assert pushed > 2 * CUSTOMERS, said.getvalue()[-3000:]
    caused = len(requests.get(f"http://127.0.0.1:{port}/__sandbox__/records/events", timeout=5).json()["records"])
    assert caused > CUSTOMERS  # events our pushes caused: read back one by one, they would cost twice as many calls

    call_command("zoho_schedules", stdout=io.StringIO())
    before = calls(port)
    log = tmp_path / "qcluster.log"
    with log.open("wb") as out:
        cluster = subprocess.Popen([sys.executable, "manage.py", "qcluster"], cwd=ROOT, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True,
                                   env=clean_env(**dotenv, DATABASE_URL=database_url()))
    try:
        deadline = time.monotonic() + RUN_SECONDS
        while time.monotonic() < deadline:
            assert cluster.poll() is None, f"qcluster exited:\n{log.read_text()[-4000:]}"
            time.sleep(1)
        spent = calls(port) - before
    finally:
        stop(cluster)

    from django_q.models import Success

    ran = set(Success.objects.values_list("func", flat=True))
    assert {"zoho_sync.tasks.replay_events", "zoho_sync.tasks.backfill"} <= ran, (ran, log.read_text()[-4000:])
    settled = ZohoEvent.objects.filter(state="ignored", outcome__startswith="ignored: our own write").count()
    assert settled >= caused - 2, (settled, caused)  # the replay saw them all and read none of them
    print(f"after the demo ({CUSTOMERS} customers, {caused} events our pushes caused): {spent} API calls in "
          f"{RUN_SECONDS} s of schedules and cluster")
    assert spent < BOUND, f"{spent} API calls in {RUN_SECONDS} s after the demo"
    assert not SyncLog.objects.filter(direction="pull", action="none").exists()
