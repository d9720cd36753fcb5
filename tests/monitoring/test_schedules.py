"""zoho_schedules installs the schedules once however often it runs, and a real qcluster executes them: the
heartbeat it writes is what the health check's queue check reads."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django_q.models import Schedule

from monitoring import checks
from monitoring.heartbeat import cluster_last_seen
from monitoring.schedules import SCHEDULES


def test_installing_twice_leaves_one_row_each(db):
    out = StringIO()
    call_command("zoho_schedules", stdout=out)
    first = dict(Schedule.objects.values_list("name", "next_run"))
    call_command("zoho_schedules", stdout=out)
    assert dict(Schedule.objects.values_list("name", "next_run")) == first, "nothing moved"
    assert set(first) == {planned.name for planned in SCHEDULES}
    assert out.getvalue().count("up to date") == len(SCHEDULES)
    from datetime import timedelta

    from django.utils import timezone

    from zoho_sync.services import backfill_schedule_continuation

    backfill_schedule_continuation(entity="all", resume_at=timezone.now() + timedelta(hours=3))
    out = StringIO()
    call_command("zoho_schedules", stdout=out)
    assert "pending     'zoho: continue backfill after the daily quota'" in out.getvalue()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_real_cluster_runs_the_heartbeat_and_the_queue_check_sees_it(start_cluster):
    assert checks.QueueCheck().run().status == checks.FAILED, "no cluster yet"
    call_command("zoho_schedules", stdout=StringIO())
    cluster = start_cluster()
    # django-q2's scheduler looks at the schedules every 30 s.
    cluster.wait_for("the heartbeat schedule to run", cluster_last_seen, timeout=75)
    assert checks.QueueCheck().run().status == checks.OK


@pytest.mark.django_db(transaction=True)
def test_a_job_never_runs_twice_at_once_and_a_dead_holder_frees_it():
    import subprocess
    import time

    from zoho_sync.client.budget import HOST
    from zoho_sync.shared_state import LEASES, LeaseState, job_lock, single_run

    with job_lock("demo", seconds=0.4) as first:
        with job_lock("demo") as second:
            assert first and not second
        time.sleep(1.0)  # past its 0.4 s: the holder's thread renewed it
        with job_lock("demo") as third:
            assert not third, "a long run keeps its lock"
    with job_lock("demo") as after:
        assert after, "released at the end"

    gone = subprocess.Popen(["true"])
    gone.wait()
    LEASES.update("job:demo", lambda s: (LeaseState(f"{HOST}:{gone.pid}:dead", time.time() + 3600), None))
    with job_lock("demo") as taken:
        assert taken, "the holder's process is gone: free at once"

    @single_run("demo")
    def job():
        with job_lock("demo") as inner:
            return "inner ran" if inner else "held"

    assert job() == "held"
    with job_lock("demo"):
        assert job() == "skipped: another run of 'demo' is in progress"
