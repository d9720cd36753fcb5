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


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_real_cluster_runs_the_heartbeat_and_the_queue_check_sees_it(start_cluster):
    assert checks.QueueCheck().run().status == checks.FAILED, "no cluster yet"
    call_command("zoho_schedules", stdout=StringIO())
    cluster = start_cluster()
    # django-q2's scheduler looks at the schedules every 30 s.
    cluster.wait_for("the heartbeat schedule to run", cluster_last_seen, timeout=75)
    assert checks.QueueCheck().run().status == checks.OK
