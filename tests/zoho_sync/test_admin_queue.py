"""django-q2's own admin pages (scheduled, successful, failed and queued tasks) start no work without "Can sync to
Zoho", and a schedule names only this product's task functions: through the real admin views, the ORM and the
cluster's own scheduler and worker."""

from __future__ import annotations

import io
import multiprocessing
from datetime import timedelta

import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.test import Client
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.models import Failure, OrmQ, Schedule, Success, Task
from django_q.scheduler import scheduler
from django_q.signing import SignedPackage
from django_q.worker import worker

from zoho_sync.task_funcs import task_funcs

pytestmark = pytest.mark.django_db
CHECKBOX = admin.helpers.ACTION_CHECKBOX_NAME
SCHEDULES = "/admin/django_q/schedule/"
Q_MODELS = ("schedule", "success", "failure", "ormq")


def staff(django_user_model, name: str, *codenames: str) -> Client:
    user = django_user_model.objects.create_user(name, password="pw", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def watcher(django_user_model):
    """Staff who may only look at django-q2's pages."""
    return staff(django_user_model, "watcher", *(f"view_{m}" for m in Q_MODELS))


@pytest.fixture
def scheduler_staff(django_user_model):
    """Staff with every django-q2 permission (add, change, delete, view), but not "Can sync to Zoho"."""
    return staff(django_user_model, "scheduler", *(f"{a}_{m}" for a in ("add", "change", "delete", "view")
                                                   for m in Q_MODELS))


@pytest.fixture
def operator(django_user_model):
    """The same staff member with "Can sync to Zoho"."""
    return staff(django_user_model, "operator", "sync_to_zoho", *(f"{a}_{m}" for a in ("add", "change", "delete",
                                                                                       "view") for m in Q_MODELS))


def done_task(task_id: str, *, success: bool, func: str = "zoho_sync.tasks.retry_entity") -> Task:
    now = timezone.now()
    return Task.objects.create(id=task_id, name=task_id, func=func, args=("customer",), kwargs={}, started=now,
                               stopped=now, success=success, group="zoho retry all")


def queued() -> list[dict]:
    """The tasks waiting in the ORM broker's queue, unpacked as a worker would read them."""
    return [SignedPackage.loads(row.payload) for row in OrmQ.objects.order_by("id")]


def action_choices(client: Client, url: str) -> list[str]:
    response = client.get(url)
    assert response.status_code == 200
    form = response.context["action_form"]  # None: no action at all
    return [name for name, _ in form.fields["action"].choices] if form else []


def messages_of(response) -> list[str]:
    return [str(m.message) for m in response.context["messages"]]


def schedule_form(**fields) -> dict:
    now = timezone.localtime()
    return {"name": "nightly", "func": "zoho_sync.tasks.backfill", "hook": "", "args": "'customer'", "kwargs": "",
            "schedule_type": Schedule.MINUTES, "minutes": "60", "repeats": "-1", "next_run_0": f"{now:%Y-%m-%d}",
            "next_run_1": f"{now:%H:%M:%S}", "cron": "", "cluster": "", "intended_date_kwarg": "", **fields}


# --- resubmitting tasks ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("who", ["watcher", "scheduler_staff"])
@pytest.mark.parametrize("model, url", [(Success, "/admin/django_q/success/"), (Failure, "/admin/django_q/failure/")])
def test_staff_without_sync_cannot_resubmit_a_task(request, who, model, url):
    client = request.getfixturevalue(who)
    task = done_task("t-1", success=model is Success)

    assert "resubmit_tasks" not in action_choices(client, url), "the action is not offered"
    forged = client.post(url, {"action": "resubmit_tasks", CHECKBOX: [task.pk]}, follow=True)

    assert forged.status_code == 200 and not any("queued again" in m for m in messages_of(forged))
    assert queued() == [], "nothing was queued"
    assert Task.objects.filter(pk=task.pk).exists(), "the failed task is kept"


@pytest.mark.parametrize("model, url", [(Success, "/admin/django_q/success/"), (Failure, "/admin/django_q/failure/")])
def test_an_operator_resubmits_a_task(operator, model, url):
    task = done_task("t-1", success=model is Success)

    assert "resubmit_tasks" in action_choices(operator, url)
    response = operator.post(url, {"action": "resubmit_tasks", CHECKBOX: [task.pk]}, follow=True)

    assert "1 task(s) queued again." in messages_of(response)
    [package] = queued()
    assert (package["func"], package["args"], package["group"]) == ("zoho_sync.tasks.retry_entity", ("customer",),
                                                                    "zoho retry all")
    assert Task.objects.filter(pk=task.pk).exists() is (model is Success), "a resubmitted failure leaves the list"


def test_a_task_naming_a_foreign_function_is_not_resubmitted(admin_client):
    done_task("t-os", success=False, func="os.system")
    done_task("t-ok", success=False)

    response = admin_client.post("/admin/django_q/failure/", {"action": "resubmit_tasks",
                                                              CHECKBOX: ["t-os", "t-ok"]}, follow=True)

    assert "1 task(s) queued again." in messages_of(response)
    assert any("t-os (os.system)" in m for m in messages_of(response))
    assert [p["func"] for p in queued()] == ["zoho_sync.tasks.retry_entity"]
    assert Failure.objects.filter(pk="t-os").exists(), "the refused one stays where it was"


# --- schedules ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("who", ["watcher", "scheduler_staff"])
def test_staff_without_sync_can_look_at_schedules_but_not_add_change_or_delete_them(request, who):
    client = request.getfixturevalue(who)
    call_command("zoho_schedules", stdout=io.StringIO())
    schedule = Schedule.objects.get(name="zoho: push pending")
    change = f"{SCHEDULES}{schedule.pk}/change/"

    assert client.get(SCHEDULES).status_code == 200 and client.get(change).status_code == 200
    assert client.get(f"{SCHEDULES}add/").status_code == 403
    added = client.post(f"{SCHEDULES}add/", schedule_form(func="zoho_sync.tasks.retry_entity"))
    changed = client.post(change, schedule_form(name=schedule.name, args="'customer'"))
    deleted = client.post(f"{SCHEDULES}{schedule.pk}/delete/", {"post": "yes"})

    assert (added.status_code, changed.status_code, deleted.status_code) == (403, 403, 403)
    schedule.refresh_from_db()
    assert schedule.args == "'all'" and Schedule.objects.filter(name="nightly").count() == 0
    assert "Save" not in client.get(change).content.decode(), "the page is read-only"


@pytest.mark.parametrize("who, allowed", [("scheduler_staff", False), ("operator", True)])
def test_a_queued_task_is_changed_or_deleted_only_with_sync(request, who, allowed):
    client = request.getfixturevalue(who)
    later = timezone.now() + timedelta(hours=1)
    row = OrmQ.objects.create(key="zoho_sync", payload=SignedPackage.dumps({"func": "zoho_sync.tasks.backfill"}),
                              lock=later)
    page = f"/admin/django_q/ormq/{row.pk}/change/"

    assert client.get(page).status_code == 200
    changed = client.post(page, {"key": "zoho_sync", "lock_0": f"{timezone.localtime():%Y-%m-%d}",
                                 "lock_1": f"{timezone.localtime():%H:%M:%S}"})
    deleted_page = client.get(f"/admin/django_q/ormq/{row.pk}/delete/")

    assert (changed.status_code, deleted_page.status_code) == ((302, 200) if allowed else (403, 403))
    row.refresh_from_db()
    assert (row.lock < later) is allowed, "run now: only with Can sync to Zoho"


def test_an_operator_adds_and_changes_a_schedule(operator):
    response = operator.post(f"{SCHEDULES}add/", schedule_form())
    assert response.status_code == 302, response.context["adminform"].form.errors
    schedule = Schedule.objects.get(name="nightly")
    assert (schedule.func, schedule.args) == ("zoho_sync.tasks.backfill", "'customer'")

    response = operator.post(f"{SCHEDULES}{schedule.pk}/change/", schedule_form(args="'invoice'"))
    assert response.status_code == 302
    schedule.refresh_from_db()
    assert schedule.args == "'invoice'"


@pytest.mark.parametrize("fields, field, words", [
    ({"func": "os.system", "args": "'touch /tmp/pwned'"}, "func", "'os.system' is not one of this product's task "
                                                                   "functions"),
    ({"func": "builtins.exec"}, "func", "'builtins.exec' is not one of this product's task functions"),
    ({"hook": "os.system"}, "hook", "'os.system' is refused"),
    ({"kwargs": "{'q_options': {'chain': [('os.system', ('id',))]}}"}, "kwargs", "Remove q_options"),
    ({"kwargs": "q_options={'hook': 'os.system'}"}, "kwargs", "Remove q_options"),
])
def test_a_schedule_naming_anything_else_is_refused_even_for_a_superuser(admin_client, fields, field, words):
    response = admin_client.post(f"{SCHEDULES}add/", schedule_form(**fields))

    assert response.status_code == 200, "the form comes back"
    errors = response.context["adminform"].form.errors
    assert words in " ".join(errors[field]), errors
    assert "zoho_sync.tasks.backfill" in " ".join(errors.get("func", ["zoho_sync.tasks.backfill"]))
    assert not Schedule.objects.filter(name="nightly").exists()


def test_changing_a_schedule_to_os_system_is_refused(admin_client):
    schedule = Schedule.objects.create(name="nightly", func="zoho_sync.tasks.backfill", args="'all'")

    response = admin_client.post(f"{SCHEDULES}{schedule.pk}/change/", schedule_form(func="os.system"))

    assert response.status_code == 200 and "os.system" in " ".join(response.context["adminform"].form.errors["func"])
    schedule.refresh_from_db()
    assert schedule.func == "zoho_sync.tasks.backfill"


def test_the_allow_list_is_this_products_task_functions():
    allowed = task_funcs()
    assert {"zoho_sync.tasks.push_record", "zoho_sync.tasks.retry_entity", "zoho_sync.tasks.apply_event",
            "monitoring.tasks.alert_failed", "monitoring.heartbeat.cluster_heartbeat"} <= allowed
    assert not {"zoho_sync.tasks.single_run", "zoho_sync.tasks.services", "os.system"} & allowed


def test_no_path_below_the_admin_writes_a_foreign_schedule(tmp_path):
    with pytest.raises(ValidationError) as refused:
        Schedule.objects.create(name="x", func="os.system", args="'id'")
    assert "'os.system' is not one of this product's task functions" in str(refused.value)
    fixture = tmp_path / "schedule.json"
    fixture.write_text('[{"model": "django_q.schedule", "pk": 99, "fields": {"name": "fx", "func": "os.system", '
                       '"args": "\'id\'", "schedule_type": "O", "repeats": -1}}]')
    with pytest.raises(ValidationError):
        call_command("loaddata", str(fixture), verbosity=0)
    assert not Schedule.objects.exists()
    # the product's own writers still work: zoho_schedules, and a backfill's continuation
    call_command("zoho_schedules", stdout=io.StringIO())
    from zoho_sync import services

    services.backfill_schedule_continuation(entity="all", resume_at=timezone.now() + timedelta(hours=1))
    assert Schedule.objects.filter(name=services.CONTINUE_SCHEDULE, func="zoho_sync.tasks.backfill").exists()


def test_a_foreign_schedule_written_around_the_orm_runs_a_refusal_not_its_function(tmp_path, monkeypatch):
    """A row written by SQL (say, before this check existed): the cluster's own scheduler queues a refusal in its
    place, a worker records it as a failed task saying why, the other schedules still run, and nothing ran."""
    # The scheduler and the worker close the process's database connections first (they run in their own
    # processes); here they run in the test's, whose database lives in that connection.
    monkeypatch.setattr("django.db.close_old_connections", lambda **kwargs: None)
    marker = tmp_path / "pwned"
    bad = Schedule.objects.create(name="evil", func="zoho_sync.tasks.backfill", next_run=timezone.now() - timedelta(
        minutes=1))
    Schedule.objects.filter(pk=bad.pk).update(func="os.system", args=repr(f"touch {marker}"))
    Schedule.objects.create(name="good", func="zoho_sync.tasks.sweep_events",
                            next_run=timezone.now() - timedelta(minutes=1))

    scheduler(broker=get_broker())

    packages = {p["group"]: p for p in queued()}
    assert packages["good"]["func"] == "zoho_sync.tasks.sweep_events", "the other schedule still ran"
    assert packages["evil"]["func"] == "zoho_sync.task_funcs.refused"
    tasks, results = multiprocessing.Queue(), multiprocessing.Queue()
    tasks.put(packages["evil"])
    tasks.put("STOP")
    worker(tasks, results, multiprocessing.Value("f", -1))
    result = results.get(timeout=10)
    assert result["success"] is False and "Schedule 'evil' names 'os.system'" in result["result"]
    assert "refused, nothing ran" in result["result"] and not marker.exists()
