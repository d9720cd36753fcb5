"""A Hypothesis state machine interleaving what happens in production: people saving records, two workers that
claim records, read them, push them late (after more saves), lose Zoho's answers, and die or stall past their
lease while another worker takes over.

After every step, the two invariants of the product:
- at most one Zoho customer per local customer;
- every customer marked synced holds, in Zoho, exactly what its payload would send now.
At the end, a worker that runs until nothing is due leaves every customer synced (nothing lost).
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from zoho_sync.models import Customer, SharedState, SyncLog, SyncStatus
from zoho_sync.sync import claims, payloads, specs
from zoho_sync.sync.engine import Engine
from zoho_sync.zoho import forget_clients, get_zoho_client

pytestmark = pytest.mark.django_db
SPEC = specs.CUSTOMER
CUSTOMERS = 3
PHONES = st.sampled_from(["+1-555-000-0001", "+1-555-000-0002", "+1-555-000-0003", ""])
NAMES = st.sampled_from(["Ava", "Bo", "Cy"])
WORKERS = st.sampled_from(["a", "b"])


def zoho_matches(remote: dict, customer: Customer) -> bool:
    """Zoho's copy holds every field the payload would send now (and no stale value of a field now empty)."""
    body = payloads.customer_to_zoho(customer)
    for key in ("display_name", "first_name", "last_name", "email", "phone"):
        if str(remote.get(key) or "") != str(body.get(key) or ""):
            return False
    return True


class Worker:
    """A worker's hand: the records it claimed and read, pushed one at a time, maybe much later."""

    def __init__(self, name: str, run: int):
        self.claimer = f"stateful-host:{1000 + run}:{name}"
        self.engine = Engine(client=get_zoho_client(), run_id=f"run-{name}-{run}", claimer=self.claimer)
        self.hand: list[Customer] = []


class SyncMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.sandbox = SANDBOX
        self.sandbox.reset()
        self.sandbox.configure(per_minute=0, daily=0, concurrency=0, check_duplicate_display_name=False)
        forget_clients()
        SharedState.objects.all().delete()  # the token cache and its mint count: the sandbox forgot its tokens
        SyncLog.objects.all().delete()
        Customer.objects.all().delete()
        self.runs = 0
        self.workers = {name: Worker(name, 0) for name in ("a", "b")}
        self.pks: list[int] = []

    @initialize()
    def customers(self):
        for n in range(CUSTOMERS):
            customer = Customer.objects.create(account_number=f"CT-2026-{n:05d}", first_name="Ava",
                                               last_name=f"Stateful{n}", email=f"stateful{n}@example.com")
            self.pks.append(customer.pk)

    # --- people ---------------------------------------------------------------------------------------------
    @rule(index=st.integers(0, CUSTOMERS - 1), phone=PHONES, name=NAMES)
    def save(self, index, phone, name):
        customer = Customer.objects.get(pk=self.pks[index])
        customer.phone, customer.first_name = phone, name
        customer.save()

    # --- workers --------------------------------------------------------------------------------------------
    @rule(worker=WORKERS, limit=st.integers(1, CUSTOMERS))
    def claim(self, worker, limit):
        """Claim and read due records now; they are pushed later, whatever happens meanwhile."""
        w = self.workers[worker]
        pks = claims.claim(Customer.objects.all(), claimer=w.claimer, limit=limit)
        w.hand += claims.claimed_objects(SPEC, pks, w.claimer)

    @precondition(lambda self: any(w.hand for w in self.workers.values()))
    @rule(worker=WORKERS)
    def push(self, worker):
        w = self.workers[worker]
        if w.hand:
            w.engine.push(SPEC, w.hand.pop(0))

    @rule(method=st.sampled_from(["POST", "PUT"]))
    def lose_next_answer(self, method):
        """Zoho applies the next write of this kind but its answer never arrives."""
        self.sandbox.fail_next(method, "/customers", kind="lose_response")

    @precondition(lambda self: Customer.objects.exclude(claimed_by="").exists())
    @rule(worker=WORKERS)
    def die(self, worker):
        """The worker is killed: its hand is gone, its claims lapse (as a lease that ran out)."""
        self._lapse(self.workers[worker])
        self.runs += 1
        self.workers[worker] = Worker(worker, self.runs)

    @precondition(lambda self: Customer.objects.exclude(claimed_by="").exists())
    @rule(worker=WORKERS)
    def stall(self, worker):
        """The worker stalls past its lease but lives on: it may push what it holds after another took over."""
        self._lapse(self.workers[worker])

    @staticmethod
    def _lapse(w: Worker):
        Customer.objects.filter(claimed_by=w.claimer).update(claimed_until=timezone.now() - timedelta(seconds=1))

    # --- invariants -----------------------------------------------------------------------------------------
    @invariant()
    def one_zoho_customer_per_record(self):
        names = Counter(r["display_name"] for r in self.sandbox.records("customers"))
        assert {n: c for n, c in names.items() if c > 1} == {}, "a customer was created twice in Zoho"
        ids = [c.zoho_id for c in Customer.objects.exclude(zoho_id=None)]
        assert len(ids) == len(set(ids))

    @invariant()
    def synced_means_zoho_holds_the_current_data(self):
        remote = {r["customer_id"]: r for r in self.sandbox.records("customers")}
        for customer in Customer.objects.filter(sync_status=SyncStatus.SYNCED):
            assert customer.zoho_id in remote, customer
            assert zoho_matches(remote[customer.zoho_id], customer), (
                f"{customer.account_number} is marked synced but Zoho holds {remote[customer.zoho_id]}")

    def teardown(self):
        """Nothing is lost: a fresh worker running until nothing is due leaves every customer synced."""
        for w in self.workers.values():
            self._lapse(w)
        finisher = Worker("z", 999)
        for _ in range(20):
            pks = claims.claim(Customer.objects.all(), claimer=finisher.claimer, limit=CUSTOMERS,
                               now=timezone.now() + timedelta(hours=2))  # every retry time has come
            if not pks:
                break
            for obj in claims.claimed_objects(SPEC, pks, finisher.claimer):
                finisher.engine.push(SPEC, obj)
        self.one_zoho_customer_per_record()
        self.synced_means_zoho_holds_the_current_data()
        left = list(Customer.objects.exclude(sync_status=SyncStatus.SYNCED).values_list("account_number",
                                                                                          "sync_status"))
        assert left == [], f"records left unsynced: {left}"
        assert len(self.sandbox.records("customers")) == CUSTOMERS


SANDBOX = None


def test_interleaved_saves_pushes_lost_answers_and_abandoned_claims(zoho_settings, zoho_sandbox):
    global SANDBOX
    SANDBOX = zoho_sandbox
    zoho_settings.SYNC_TRIGGERS_ENABLED = False
    zoho_settings.SYNC_OUTCOME_RECHECK_SECONDS = 0
    zoho_settings.SYNC_RETRY_BASE_SECONDS = 0
    run_state_machine_as_test(SyncMachine, settings=settings(
        max_examples=60, stateful_step_count=30, deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]))
