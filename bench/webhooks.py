"""Benchmark: the webhook endpoint under Zoho's delivery load, served by gunicorn on PostgreSQL (a scratch database).

Usage: .venv/bin/python bench/webhooks.py [--rate 50] [--seconds 60] [--workers 2] [--threads 4]
                                          [--keep-db NAME] [--pg postgres://postgres@127.0.0.1:5432]

Target (the issue): `POST /zoho/webhooks/` answers 200 within 1 s at 50 deliveries per second for 60 s, with every
event stored exactly once.

1. Creates a scratch database and migrates it (bench/scale_data.py; dropped at the end unless --keep-db NAME, which
   uses and keeps that database: each run's event ids carry their own prefix, so a kept database can be reused).
2. Serves the real app with a real WSGI server, as production does: `gunicorn config.wsgi:application` (gthread,
   --workers processes x --threads threads, on a free port of 127.0.0.1) with DEBUG=false, a SECRET_KEY,
   ALLOWED_HOSTS=127.0.0.1, SECURE_SSL_REDIRECT=false (TLS ends at a proxy in production), no .env file,
   ZOHO_WEBHOOK_SECRET set and LOG_LEVEL=WARNING; the settings' own CONN_MAX_AGE (persistent database connections).
   Waits until it answers a signed ping (a delivery without an event id: 200, nothing stored), then sends a few more
   pings so every worker has imported the app before the clock starts.
3. Sends signed deliveries (X-Zoho-Webhook-Signature: HMAC-SHA256 of the body) open loop: delivery i is due at
   start + i / rate, whatever became of the earlier ones, from a thread pool whose threads each keep one HTTP/1.1
   keep-alive connection. Each body is a `payment_thankyou` event shaped like Zoho's (about 1.3 KB). About 5% of
   the deliveries are re-deliveries of an earlier event (Zoho delivers at least once: the same body again), and 1%
   of the slots are a concurrent duplicate: the same event sent twice at the same moment on two connections (a
   barrier releases both together), which races the two inserts of one event id.
4. Measures each delivery's latency from its scheduled send time to the end of its answer, so a stalled server (or
   a stalled client) shows as latency, not as a lower rate; "client lag" is how late the request actually left.
5. Checks the database afterwards: the ZohoEvent rows of this run == the unique event ids sent (the same ids), no
   event id twice, every new event answered "accepted" once, and one queued `zoho_sync.tasks.apply_event` task (a
   django_q_ormq row, its signed payload decoded) per stored event. Also shows, from pg_stat_database, the sessions
   the server opened (persistent connections: about one per busy worker thread) and the transactions rolled back
   (a concurrent duplicate whose insert lost the race to the unique index: the path that must answer "duplicate").

Nothing processes the queue during the bench (no qcluster runs): only the endpoint is measured, and the queued tasks
stay in django_q_ormq to be counted. The load generator shares the machine (its CPUs) with gunicorn and PostgreSQL.

Prints deliveries sent, answered 200, other statuses and errors (any non-200 is a failure), latency p50 / p95 / p99
/ max overall and per kind (new, re-delivery, concurrent duplicate), deliveries over 1 s, the achieved rate, the
database checks and the verdict line "target: every delivery 200 within 1 s, each event stored once: PASS/FAIL";
exit status 0 on PASS, 1 on FAIL.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import hmac
import http.client
import json
import os
import random
import secrets
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import scale_data  # noqa: E402

PATH = "/zoho/webhooks/"
SIGNATURE_HEADER = "X-Zoho-Webhook-Signature"
SECRET = secrets.token_hex(32)  # ZOHO_WEBHOOK_SECRET of this run's server
TASK = "zoho_sync.tasks.apply_event"
TARGET_SECONDS = 1.0
REDELIVERY_SHARE = 0.05  # of the deliveries: an earlier event sent again
CONCURRENT_SHARE = 0.01  # of the slots: the start of a pair of simultaneous deliveries of one event
CLIENT_TIMEOUT = 30.0  # seconds a delivery may take before it counts as unanswered
IDLE_REFRESH = 1.5  # a connection idle longer is opened anew (gunicorn closes idle keep-alive ones after 2 s)
SEED = 20261203


# --- the deliveries --------------------------------------------------------------------------------------------
def signature(body: bytes) -> str:
    """As zoho_sync.webhooks.webhook_signature with no query parameters (written out: the bench checks the app)."""
    return hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()


def event_body(event_id: str, n: int) -> bytes:
    """A `payment_thankyou` event shaped like Zoho's (about 1.3 KB), compact JSON as Zoho sends it."""
    customer = str(903_000_000_100_000 + n % 5000)
    payment = str(903_000_000_500_000 + n)
    invoice = str(903_000_000_300_000 + n)
    amount = round(10 + (n % 90) + (n % 7) / 10, 2)
    payload = {
        "created_time": "2026-12-03T08:00:00+0000",
        "event_id": event_id,
        "event_type": "payment_thankyou",
        "event_time": "2026-12-03T08:00:00+0000",
        "event_source": "api",
        "data": {
            "payment": {
                "payment_id": payment,
                "payment_number": f"PAY-{n:06d}",
                "payment_mode": "creditcard",
                "amount": amount,
                "amount_refunded": 0.0,
                "bank_charges": 0.0,
                "date": "2026-12-03",
                "status": "success",
                "reference_number": f"ch_3Q{n:010d}XyZbench",
                "description": f"Payment of Invoice INV-{n:06d} through the customer portal",
                "customer_id": customer,
                "customer_name": f"Customer {n % 5000} Residential",
                "email": f"customer{n % 5000}@example.com",
                "currency_code": "USD",
                "currency_symbol": "$",
                "exchange_rate": 1.0,
                "tax_amount_withheld": 0.0,
                "autotransaction": {
                    "autotransaction_id": str(903_000_000_700_000 + n),
                    "payment_gateway": "stripe",
                    "gateway_transaction_id": f"ch_3Q{n:010d}XyZbench",
                    "gateway_error_message": "",
                    "card_id": str(903_000_000_900_000 + n % 5000),
                    "last_four_digits": f"{n % 10000:04d}",
                    "expiry_month": 1 + n % 12,
                    "expiry_year": 2030,
                },
                "invoices": [{
                    "invoice_id": invoice,
                    "invoice_number": f"INV-{n:06d}",
                    "date": "2026-12-01",
                    "due_date": "2026-12-31",
                    "invoice_amount": amount,
                    "amount_applied": amount,
                    "balance_amount": 0.0,
                }],
                "custom_fields": [{"customfield_id": "903000000011111", "label": "Account number",
                                   "value": f"CT-{n % 5000:08d}", "data_type": "string"}],
                "created_time": "2026-12-03T08:00:00+0000",
                "updated_time": "2026-12-03T08:00:00+0000",
            }
        },
    }
    return json.dumps(payload, separators=(",", ":")).encode()


@dataclass
class Delivery:
    slot: int
    due: float  # seconds after the start
    event_id: str
    body: bytes
    kind: str  # "new", "redelivery", "concurrent" (the second of a simultaneous pair)
    barrier: threading.Barrier | None = None
    started: float = 0.0  # perf_counter when the request began to leave, after any barrier
    done: float = 0.0
    status: int = 0  # 0: no answer (see error)
    answer: str = ""  # the JSON status: accepted, duplicate, ignored
    error: str = ""
    fresh_connection: bool = False


def plan(rate: float, seconds: float, token: str) -> list[Delivery]:
    """rate x seconds deliveries, one per slot at i / rate; the re-deliveries and simultaneous pairs chosen by a
    fixed seed."""
    rng = random.Random(SEED)
    slots = int(rate * seconds)
    deliveries: list[Delivery] = []
    originals: list[Delivery] = []
    n = 0
    i = 0
    while i < slots:
        due = i / rate
        if originals and i > rate and rng.random() < REDELIVERY_SHARE:
            first = rng.choice(originals)
            deliveries.append(Delivery(i, due, first.event_id, first.body, "redelivery"))
        else:
            event_id = f"{token}{n:07d}"
            delivery = Delivery(i, due, event_id, event_body(event_id, n), "new")
            n += 1
            deliveries.append(delivery)
            originals.append(delivery)
            if i + 1 < slots and rng.random() < CONCURRENT_SHARE:  # the next slot: the same event, at once
                barrier = threading.Barrier(2, timeout=5)
                delivery.barrier = barrier
                deliveries.append(Delivery(i + 1, due, event_id, delivery.body, "concurrent", barrier))
                i += 1
        i += 1
    return deliveries


# --- the HTTP client -------------------------------------------------------------------------------------------
class Client:
    """One keep-alive connection per thread; a connection idle too long (or closed by the server) is opened anew
    before it is used, never retried after a request was sent."""

    def __init__(self, port: int):
        self.port = port
        self.local = threading.local()
        self.opened = 0
        self.lock = threading.Lock()

    def connection(self) -> tuple[http.client.HTTPConnection, bool]:
        conn = getattr(self.local, "conn", None)
        now = time.perf_counter()
        if conn is not None and (conn.sock is None or now - self.local.used > IDLE_REFRESH
                                 or select.select([conn.sock], [], [], 0)[0]):  # readable when idle: closed
            conn.close()
            conn = None
        fresh = conn is None
        if fresh:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=CLIENT_TIMEOUT)
            conn.connect()
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.local.conn = conn
            self.local.used = now
            with self.lock:
                self.opened += 1
        return conn, fresh

    def post(self, conn: http.client.HTTPConnection, body: bytes) -> tuple[int, bytes]:
        try:
            conn.request("POST", PATH, body=body, headers={
                "Content-Type": "application/json", SIGNATURE_HEADER: signature(body),
                "User-Agent": "bench/webhooks.py"})
            response = conn.getresponse()
            data = response.read()
        except BaseException:
            conn.close()
            self.local.conn = None
            raise
        self.local.used = time.perf_counter()
        if response.will_close:
            conn.close()
        return response.status, data

    def send(self, delivery: Delivery) -> None:
        try:
            conn, delivery.fresh_connection = self.connection()
            if delivery.barrier is not None:
                delivery.barrier.wait()
            delivery.started = time.perf_counter()
            status, data = self.post(conn, delivery.body)
            delivery.done = time.perf_counter()
            delivery.status = status
            with contextlib.suppress(ValueError, AttributeError):
                delivery.answer = str(json.loads(data).get("status", ""))
        except Exception as error:  # any failure is the delivery's: counted, never retried
            delivery.done = time.perf_counter()
            delivery.error = type(error).__name__


def run_load(port: int, deliveries: list[Delivery], rate: float) -> tuple[float, Client]:
    """Send every delivery at its due time (open loop); return the start (perf_counter) once all are answered."""
    client = Client(port)
    pool = ThreadPoolExecutor(max_workers=max(64, int(rate * 4)), thread_name_prefix="delivery")
    futures = []
    start = time.perf_counter() + 0.2
    try:
        for delivery in deliveries:
            pause = start + delivery.due - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            futures.append(pool.submit(client.send, delivery))
        wait(futures, timeout=CLIENT_TIMEOUT + 30)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return start, client


# --- the server ------------------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def server_env(url: str) -> dict[str, str]:
    return {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "config.settings",
            "DJANGO_ENV_FILE": "/nonexistent", "DEBUG": "false", "SECRET_KEY": "bench-" + SECRET,
            "ALLOWED_HOSTS": "127.0.0.1", "SECURE_SSL_REDIRECT": "false", "ZOHO_WEBHOOK_SECRET": SECRET,
            "LOG_LEVEL": "WARNING", "Q_SYNC": "false", "PYTHONUNBUFFERED": "1"}


def start_server(url: str, port: int, workers: int, threads: int, log) -> subprocess.Popen:
    command = [sys.executable, "-m", "gunicorn", "config.wsgi:application", "--worker-class", "gthread",
               "--workers", str(workers), "--threads", str(threads), "--bind", f"127.0.0.1:{port}",
               "--no-control-socket", "--log-level", "warning", "--error-logfile", "-"]
    return subprocess.Popen(command, cwd=ROOT, env=server_env(url), stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)


def ping(port: int) -> int:
    body = json.dumps({"event_type": "ping", "note": "bench/webhooks.py readiness"}).encode()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("POST", PATH, body=body, headers={"Content-Type": "application/json",
                                                       SIGNATURE_HEADER: signature(body)})
        return conn.getresponse().status
    finally:
        conn.close()


def wait_ready(server: subprocess.Popen, port: int, workers: int, threads: int) -> float:
    started = time.monotonic()
    while True:
        if server.poll() is not None:
            raise SystemExit(f"gunicorn exited ({server.returncode}) before answering")
        with contextlib.suppress(OSError, http.client.HTTPException):
            status = ping(port)
            if status == 200:
                break
            raise SystemExit(f"the readiness ping answered {status}, not 200")
        if time.monotonic() - started > 60:
            raise SystemExit("gunicorn did not answer within 60 s")
        time.sleep(0.1)
    ready = time.monotonic() - started
    with ThreadPoolExecutor(max_workers=workers * threads) as pool:  # every worker imports the app now
        list(pool.map(lambda _: ping(port), range(workers * threads * 4)))
    return ready


def stop_server(server: subprocess.Popen) -> None:
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


# --- the report ------------------------------------------------------------------------------------------------
def percentile(values: list[float], share: float) -> float:
    """Nearest rank."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, int(share * len(ordered) + 0.999999) - 1))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f} ms"


def report_load(deliveries: list[Delivery], start: float, rate: float, seconds: float, client: Client) -> bool:
    sent = len(deliveries)
    ok = [d for d in deliveries if d.status == 200]
    other = Counter(str(d.status) for d in deliveries if d.status and d.status != 200)
    errors = Counter(d.error for d in deliveries if d.error)
    latency = [d.done - (start + d.due) for d in deliveries if d.status]
    over = sum(1 for d in deliveries if d.status and d.done - (start + d.due) > TARGET_SECONDS)
    lag = [d.started - (start + d.due) for d in deliveries if d.started]
    left = [d.started for d in deliveries if d.started]
    span = max(left) - min(left) if len(left) > 1 else 0.0
    answered = [d.done for d in deliveries if d.status]
    answers = Counter(d.answer or "-" for d in ok)
    print(f"\nload: {rate:g} deliveries/s for {seconds:g} s, open loop ({client.opened} HTTP connections opened)")
    print(f"  deliveries sent          {sent:>8,}   (new {sum(d.kind == 'new' for d in deliveries):,}, "
          f"re-deliveries {sum(d.kind == 'redelivery' for d in deliveries):,}, concurrent duplicates "
          f"{sum(d.kind == 'concurrent' for d in deliveries):,})")
    print(f"  answered 200             {len(ok):>8,}   ({', '.join(f'{k} {v:,}' for k, v in sorted(answers.items()))})")
    print(f"  other statuses           {sum(other.values()):>8,}   {dict(other) if other else ''}")
    print(f"  no answer (errors)       {sum(errors.values()):>8,}   {dict(errors) if errors else ''}")
    print(f"  latency from the scheduled send time: p50 {ms(percentile(latency, 0.5))}, p95 "
          f"{ms(percentile(latency, 0.95))}, p99 {ms(percentile(latency, 0.99))}, max {ms(max(latency, default=0))}")
    print(f"  deliveries over {TARGET_SECONDS:g} s      {over:>8,}")
    for kind in ("new", "redelivery", "concurrent"):
        values = [d.done - (start + d.due) for d in deliveries if d.status and d.kind == kind]
        if values:
            print(f"    {kind:<12} {len(values):>6,}: p50 {ms(percentile(values, 0.5))}, p99 "
                  f"{ms(percentile(values, 0.99))}, max {ms(max(values))}")
    print(f"  achieved rate: {(len(left) - 1) / span if span else 0:.2f} deliveries/s sent over {span:.2f} s; "
          f"{len(answered) / (max(answered) - start):.2f}/s answered (the last at {max(answered) - start:.2f} s)"
          if answered else "  achieved rate: nothing answered")
    print(f"  client lag (scheduled to sent): p99 {ms(percentile(lag, 0.99))}, max {ms(max(lag, default=0))}"
          + ("  (the load generator fell behind: the latencies include its wait)"
             if max(lag, default=0) > 0.1 else ""))
    slow = sorted((d for d in deliveries if d.status), key=lambda d: d.done - (start + d.due), reverse=True)[:5]
    if slow and slow[0].done - (start + slow[0].due) > TARGET_SECONDS / 2:
        print("  slowest: " + "; ".join(f"#{d.slot} at {d.due:.2f} s {d.kind} {ms(d.done - (start + d.due))}"
                                        for d in slow))
    return len(ok) == sent and over == 0


def pg_counters(url: str) -> tuple[int, int]:
    """Transactions rolled back and sessions opened in the database so far (pg_stat_database; this reading's own
    session counts once)."""
    with psycopg_connect(url) as conn:
        return conn.execute("SELECT xact_rollback, sessions FROM pg_stat_database WHERE datname = "
                            "current_database()").fetchone()


def check_database(deliveries: list[Delivery], token: str, url: str, rollbacks: int) -> bool:
    """The stored events against the ids sent, and the queued tasks against the stored events."""
    os.environ.update({key: value for key, value in server_env(url).items() if key not in ("PYTHONUNBUFFERED",)})
    import django

    django.setup()
    from django.db.models import Count
    from django_q.conf import Conf
    from django_q.models import OrmQ
    from django_q.signing import SignedPackage

    from zoho_sync.models import ZohoEvent

    sent = {d.event_id for d in deliveries}
    rows = ZohoEvent.objects.filter(event_id__startswith=token)
    stored = dict(rows.values_list("event_id", "pk"))
    row_count = rows.count()
    twice = rows.values("event_id").annotate(n=Count("id")).filter(n__gt=1).count()
    missing, unexpected = sent - set(stored), set(stored) - sent
    pks = set(stored.values())
    queued: Counter[int] = Counter()
    other_tasks = 0
    for payload in OrmQ.objects.filter(key=Conf.CLUSTER_NAME).values_list("payload", flat=True).iterator():
        task = SignedPackage.loads(payload)
        args = task.get("args") or ()
        if task.get("func") == TASK and args and args[0] in pks:
            queued[args[0]] += 1
        else:
            other_tasks += 1
    queued_twice = sum(1 for count in queued.values() if count > 1)
    not_queued = len(pks - set(queued))
    accepted = sum(1 for d in deliveries if d.answer == "accepted")
    print("\ndatabase:")
    print(f"  unique event ids sent              {len(sent):>8,}")
    print(f"  ZohoEvent rows of this run         {row_count:>8,}   (missing {len(missing)}, unexpected "
          f"{len(unexpected)})")
    print(f"  event ids stored more than once    {twice:>8,}")
    print(f"  answered 'accepted' (new)          {accepted:>8,}")
    print(f"  inserts that lost a race           {rollbacks:>8,}   (transactions rolled back during the load: a "
          f"concurrent duplicate's insert meeting the unique index)")
    print(f"  queued apply tasks (django_q_ormq) {sum(queued.values()):>8,}   (events queued twice {queued_twice}, "
          f"never queued {not_queued}; other rows in the queue {other_tasks})")
    return (row_count == len(sent) and not missing and not unexpected and twice == 0 and accepted == len(sent)
            and sum(queued.values()) == len(sent) and queued_twice == 0 and not_queued == 0)


def server_log_summary(path: Path) -> None:
    lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    notable = [line for line in lines if any(word in line for word in ("WARNING", "ERROR", "CRITICAL", "Traceback",
                                                                       "[WARN", "[ERROR", "[CRITICAL"))]
    print(f"\ngunicorn log: {len(lines)} lines, {len(notable)} warnings or errors")
    for line in notable[:10]:
        print(f"  {line[:200]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=50.0, help="deliveries per second")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker")
    parser.add_argument("--keep-db", default="", metavar="NAME", help="use (and keep) this database")
    parser.add_argument("--pg", default=scale_data.DEFAULT_PG, metavar="URL", help="the PostgreSQL server")
    args = parser.parse_args()

    import gunicorn

    db = args.keep_db or f"zoho_bench_webhooks_{os.getpid()}"
    token = f"{int(time.time())}{os.getpid() % 1000:03d}"  # this run's event ids: token + a 7-digit number
    deliveries = plan(args.rate, args.seconds, token)
    sizes = sorted(len(d.body) for d in deliveries)
    created = scale_data.create_database(args.pg, db)
    url = f"{args.pg}/{db}"
    server = None
    try:
        scale_data.migrate(url)
        with psycopg_connect(url) as conn:
            pg_version = conn.execute("SHOW server_version").fetchone()[0]
        print(f"database {db} ({'created' if created else 'kept from before'}), PostgreSQL {pg_version}; "
              f"gunicorn {gunicorn.__version__}, {args.workers} workers x {args.threads} threads (gthread); "
              f"{os.cpu_count()} CPUs")
        print(f"bodies {sizes[0]:,}-{sizes[-1]:,} bytes; event ids {token}0000000..; nothing processes the queue")
        before = pg_counters(url)
        port = free_port()
        with tempfile.TemporaryDirectory(prefix="bench-webhooks-") as folder:
            log_path = Path(folder) / "gunicorn.log"
            with open(log_path, "wb") as log:
                server = start_server(url, port, args.workers, args.threads, log)
                ready = wait_ready(server, port, args.workers, args.threads)
                print(f"gunicorn answered after {ready:.1f} s on 127.0.0.1:{port}")
                start, client = run_load(port, deliveries, args.rate)
                stop_server(server)
            server_log_summary(log_path)
        after = pg_counters(url)  # the backends report theirs when they end, with gunicorn
        rollbacks, sessions = after[0] - before[0], after[1] - before[1] - 1
        load_ok = report_load(deliveries, start, args.rate, args.seconds, client)
        print(f"\nPostgreSQL sessions the server opened: {sessions} (for {args.workers * args.threads} worker threads; "
              f"CONN_MAX_AGE keeps them)")
        stored_ok = check_database(deliveries, token, url, rollbacks)
    finally:
        if server is not None:
            stop_server(server)
        if not args.keep_db:
            scale_data.drop_database(args.pg, db)
    verdict = "PASS" if load_ok and stored_ok else "FAIL"
    print(f"\ntarget: every delivery 200 within {TARGET_SECONDS:g} s, each event stored once: {verdict}")
    sys.exit(0 if verdict == "PASS" else 1)


def psycopg_connect(url: str):
    import psycopg

    return psycopg.connect(url, autocommit=True)


if __name__ == "__main__":
    main()
