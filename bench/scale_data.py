"""What the scale benchmarks share: a scratch PostgreSQL database, migrated, and bulk-filled with SQL alone (fast).

Used by bench/health_scale.py and bench/admin_scale.py. The fill, for N customers and L sync-log rows:
- N customers: 99.5% synced, 0.3% failed (invalid email, failing for up to 20 days: the ones a person must fix),
  0.1% pending, 0.1% skipped; one service package; a synced service for every tenth customer;
- L sync-log rows over the last 90 days (2% failures), for customer, customer_service, invoice and payment;
- the records that wait on the failed customers: a blocked service for a third of them, a blocked invoice for
  two thirds and a blocked payment for a third; and the ordinary billing: an invoice (one line) for every 20th
  customer, paid by a completed payment for every 40th;
- 3,000 finished sync runs over 90 days (trigger, retry and backfill; some unsettled, stopped or crashed) and one
  running now;
- API usage: seven endpoints a day over 90 days (under the default daily quota of 1,000);
- daily metrics for the last 30 days, per entity and "all", rolled up from the sync log, the usage and the runs
  as monitoring.metrics does (today's row incomplete);
then VACUUM ANALYZE. Each part is filled only when its table is empty, so a kept database is filled once and a
part added here later is filled on the next run. The customer and sync-log inserts drop those tables' plain
indexes and build them again afterwards (much faster than maintaining them row by row).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PG = "postgres://postgres@127.0.0.1:5432"

CORE = """
INSERT INTO zoho_sync_customer (account_number, first_name, last_name, company_name, email, phone, account_type,
    status, billing_street, billing_city, billing_state, billing_postal_code, billing_country, currency_code,
    created_at, updated_at, zoho_id, sync_status, sync_version, last_synced_at, last_sync_error, last_error_kind,
    sync_attempts, next_retry_at, sync_fingerprint, create_intent_at, claimed_by, claimed_until, push_queued_at,
    failing_since)
SELECT 'CT-SCALE-' || lpad(n::text, 8, '0'), 'First' || n, 'Last', '', 'c' || n || '@example.com', '', 'residential',
    'active', '', '', '', '', '', 'USD', now() - interval '400 days', now() - (n % 400) * interval '1 day',
    CASE WHEN n % 1000 < 995 THEN (903000000000000 + n)::text END,
    CASE WHEN n % 1000 < 995 THEN 'synced' WHEN n % 1000 < 998 THEN 'failed' WHEN n % 1000 = 998 THEN 'pending'
         ELSE 'skipped' END,
    1, CASE WHEN n % 1000 < 995 THEN now() END,
    CASE WHEN n % 1000 BETWEEN 995 AND 997 THEN 'Email address is not valid.' ELSE '' END,
    CASE WHEN n % 1000 BETWEEN 995 AND 997 THEN 'invalid_data' ELSE '' END,
    CASE WHEN n % 1000 BETWEEN 995 AND 997 THEN 1 ELSE 0 END, NULL, '', NULL, '', NULL, NULL,
    CASE WHEN n % 1000 BETWEEN 995 AND 997 THEN now() - (n % 20) * interval '1 day' END
FROM generate_series(1, {customers}) AS n;

INSERT INTO zoho_sync_servicepackage (name, plan_code, description, price, interval, interval_unit, is_active,
    zoho_product_id, created_at, updated_at, zoho_id, sync_status, sync_version, last_sync_error, last_error_kind,
    sync_attempts, sync_fingerprint, claimed_by)
VALUES ('Scale plan', 'SCALE-1', '', 10, 1, 'months', true, '9030', now(), now(), 'SCALE-1', 'synced', 1, '', '', 0,
    '', '');

INSERT INTO zoho_sync_customerservice (customer_id, package_id, status, quantity, activated_at, created_at,
    updated_at, zoho_id, sync_status, sync_version, last_sync_error, last_error_kind, sync_attempts,
    sync_fingerprint, claimed_by, zoho_child_invoice_id)
SELECT c.id, p.id, 'active', 1, now() - interval '300 days', now(), now(),
    CASE WHEN c.zoho_id IS NOT NULL THEN 'SUB' || c.id END,
    CASE WHEN c.zoho_id IS NOT NULL THEN 'synced' ELSE 'blocked' END, 1, '', '', 0, '', '', ''
FROM zoho_sync_customer c CROSS JOIN zoho_sync_servicepackage p WHERE c.id % 10 = 0;

INSERT INTO zoho_sync_synclog (entity, object_pk, object_repr, zoho_entity, zoho_id, direction, action, status,
    attempt, message, error_type, error_kind, zoho_message, request_method, request_path, request_body,
    response_body, duration_ms, run_id, created_at)
SELECT (ARRAY['customer','customer_service','invoice','payment'])[1 + n % 4], (n % 1000000)::text, '', '', '',
    'push', 'create', CASE WHEN n % 50 = 0 THEN 'failed' ELSE 'success' END, 1, '', '', '', '', '', '', '', '',
    100 + n % 900, '', now() - (n % (90 * 24 * 60)) * interval '1 minute'
FROM generate_series(1, {logs}) AS n;
"""

BILLING = """
INSERT INTO zoho_sync_customerservice (customer_id, package_id, status, quantity, activated_at, created_at,
    updated_at, zoho_id, sync_status, sync_version, last_sync_error, last_error_kind, sync_attempts,
    sync_fingerprint, claimed_by, zoho_child_invoice_id)
SELECT c.id, p.id, 'active', 1, now() - interval '30 days', now(), now(), NULL, 'blocked', 1,
    'Blocked until a person fixes its customer: ' || c.account_number || ' Email address is not valid.',
    'dependency', 0, '', '', ''
FROM zoho_sync_customer c CROSS JOIN zoho_sync_servicepackage p WHERE c.sync_status = 'failed' AND c.id % 1000 = 995;

INSERT INTO zoho_sync_invoice (invoice_number, customer_id, service_id, kind, origin, status, issued_on, due_on,
    period_start, period_end, currency_code, subtotal, tax_total, total, notes, created_at, updated_at, zoho_id,
    sync_status, sync_version, last_synced_at, last_sync_error, last_error_kind, sync_attempts, sync_fingerprint,
    claimed_by)
SELECT 'INV-SCALE-' || lpad(c.id::text, 8, '0'), c.id, NULL, 'manual', 'local',
    CASE WHEN c.zoho_id IS NULL THEN 'issued' WHEN c.id % 40 = 0 THEN 'paid' ELSE 'issued' END,
    current_date - (c.id % 90)::int, current_date - (c.id % 90)::int + 30, NULL, NULL, 'USD', 10.00, 1.00, 11.00, '',
    now() - (c.id % 90) * interval '1 day', now() - (c.id % 90) * interval '1 day',
    CASE WHEN c.zoho_id IS NOT NULL THEN 'INV' || c.id END,
    CASE WHEN c.zoho_id IS NOT NULL THEN 'synced' ELSE 'blocked' END, 1,
    CASE WHEN c.zoho_id IS NOT NULL THEN now() END,
    CASE WHEN c.zoho_id IS NULL
         THEN 'Blocked until a person fixes its customer: ' || c.account_number || ' Email address is not valid.'
         ELSE '' END,
    CASE WHEN c.zoho_id IS NULL THEN 'dependency' ELSE '' END, 0, '', ''
FROM zoho_sync_customer c
WHERE (c.id % 20 = 0 AND c.zoho_id IS NOT NULL) OR (c.sync_status = 'failed' AND c.id % 1000 IN (995, 996));

INSERT INTO zoho_sync_invoiceline (invoice_id, position, description, package_id, quantity, unit_price, amount)
SELECT i.id, 1, 'Scale plan, one month', p.id, 1.00, 10.00, 10.00
FROM zoho_sync_invoice i CROSS JOIN zoho_sync_servicepackage p;

INSERT INTO zoho_sync_payment (reference, customer_id, invoice_id, amount, currency_code, method, status, paid_at,
    notes, created_at, updated_at, zoho_id, sync_status, sync_version, last_synced_at, last_sync_error,
    last_error_kind, sync_attempts, sync_fingerprint, claimed_by, origin, refunded_amount)
SELECT 'PAY-SCALE-' || lpad(i.customer_id::text, 8, '0'), i.customer_id, i.id, i.total, 'USD', 'banktransfer',
    CASE WHEN i.zoho_id IS NOT NULL THEN 'completed' ELSE 'pending' END,
    CASE WHEN i.zoho_id IS NOT NULL THEN i.issued_on + interval '3 days' END, '', i.created_at, i.created_at,
    CASE WHEN i.zoho_id IS NOT NULL THEN 'PAY' || i.id END,
    CASE WHEN i.zoho_id IS NOT NULL THEN 'synced' ELSE 'blocked' END, 1,
    CASE WHEN i.zoho_id IS NOT NULL THEN now() END,
    CASE WHEN i.zoho_id IS NULL THEN 'Blocked: its invoice is blocked itself (' || i.invoice_number || ')' ELSE '' END,
    CASE WHEN i.zoho_id IS NULL THEN 'dependency' ELSE '' END, 0, '', '', 'local', 0
FROM zoho_sync_invoice i
WHERE (i.customer_id % 40 = 0 AND i.zoho_id IS NOT NULL) OR (i.zoho_id IS NULL AND i.customer_id % 1000 = 995);
"""

RUNS = """
INSERT INTO zoho_sync_syncrun (run_id, kind, entities, since, status, started_at, finished_at, heartbeat_at, host,
    pid, workers, records, counts, unsettled, api_calls, rate_limited, budget_wait_seconds, stop_reason, resume_at,
    exit_code, error)
SELECT md5('scale-run-' || n), kind, 'customer,service_package,customer_service,invoice,payment', NULL, status,
    started, started + (20 + n % 600) * interval '1 second', started + (20 + n % 600) * interval '1 second',
    'bench-host', 10000 + n % 50000, CASE WHEN kind = 'backfill' THEN 4 ELSE 1 END, records,
    jsonb_build_object('customer', jsonb_build_object('synced', records - failed, 'needs_person', failed)),
    CASE WHEN failed > 0 THEN jsonb_build_object('needs_person', failed) ELSE '{{}}'::jsonb END,
    records + records / 10, CASE WHEN n % 25 = 0 THEN 3 ELSE 0 END, CASE WHEN n % 25 = 0 THEN 12.5 ELSE 0 END,
    CASE WHEN status = 'stopped' THEN 'The daily API quota is used up.' ELSE '' END, NULL,
    CASE status WHEN 'settled' THEN 0 WHEN 'crashed' THEN NULL ELSE 2 END,
    CASE WHEN status = 'crashed' THEN 'OperationalError: server closed the connection unexpectedly' ELSE '' END
FROM (
    SELECT n, kind, status, records, CASE WHEN status IN ('unsettled', 'stopped') THEN 1 + n % 7 ELSE 0 END AS failed,
        now() - n * interval '43 minutes' AS started
    FROM (
        SELECT n, CASE WHEN n % 20 = 0 THEN 'backfill' WHEN n % 5 = 0 THEN 'retry' ELSE 'trigger' END AS kind,
            CASE WHEN n % 100 = 0 THEN 'crashed' WHEN n % 50 = 0 THEN 'stopped' WHEN n % 10 = 0 THEN 'unsettled'
                 ELSE 'settled' END AS status,
            CASE WHEN n % 20 = 0 THEN 5000 + n ELSE 8 + n % 200 END AS records
        FROM generate_series(1, {runs}) AS n
    ) AS a
) AS r;

INSERT INTO zoho_sync_syncrun (run_id, kind, entities, status, started_at, heartbeat_at, host, pid, workers, records,
    counts, unsettled, api_calls, rate_limited, budget_wait_seconds, stop_reason, error)
VALUES (md5('scale-run-running'), 'backfill', 'customer,service_package,customer_service,invoice,payment', 'running',
    now() - interval '5 minutes', now(), 'bench-host', 9999, 4, 0, '{{}}', '{{}}', 0, 0, 0, '', '');
"""

USAGE = """
INSERT INTO zoho_sync_apiusage (day, organization_id, endpoint, calls)
SELECT (now() AT TIME ZONE 'UTC')::date - d, '903000', e.endpoint, e.share * (2 + (d * 7) % 3)
FROM generate_series(0, 89) AS d,
    (VALUES ('GET /customers', 10), ('POST /customers', 30), ('PUT /customers/{{id}}', 50), ('POST /subscriptions', 15),
            ('POST /invoices', 25), ('POST /payments', 20), ('GET /plans', 2)) AS e(endpoint, share);
"""

METRICS = """
INSERT INTO monitoring_dailymetric (day, entity, attempts, successes, failures, avg_ms, p95_ms, api_calls,
    rate_limited, budget_wait_seconds, complete, rolled_up_at)
WITH days AS (SELECT (now() AT TIME ZONE 'UTC')::date - d AS day FROM generate_series(0, 29) AS d),
entities AS (SELECT unnest(ARRAY['customer', 'service_package', 'customer_service', 'invoice', 'payment', 'all'])
             AS entity),
logs AS (
    SELECT (created_at AT TIME ZONE 'UTC')::date AS day, CASE WHEN GROUPING(entity) = 1 THEN 'all' ELSE entity END
            AS entity,
        count(*) AS attempts, count(*) FILTER (WHERE status = 'success') AS successes,
        count(*) FILTER (WHERE status = 'failed') AS failures, round(avg(duration_ms))::int AS avg_ms,
        percentile_disc(0.95) WITHIN GROUP (ORDER BY duration_ms) AS p95_ms
    FROM zoho_sync_synclog
    WHERE created_at >= ((now() AT TIME ZONE 'UTC')::date - 29)::timestamp AT TIME ZONE 'UTC'
        AND status IN ('success', 'failed')
    GROUP BY GROUPING SETS (((created_at AT TIME ZONE 'UTC')::date, entity), ((created_at AT TIME ZONE 'UTC')::date))
),
usage AS (
    SELECT day, CASE WHEN GROUPING(entity) = 1 THEN 'all' ELSE entity END AS entity, sum(calls) AS calls
    FROM (SELECT day, CASE split_part(split_part(endpoint, ' ', 2), '/', 2)
                        WHEN 'customers' THEN 'customer' WHEN 'products' THEN 'service_package'
                        WHEN 'plans' THEN 'service_package' WHEN 'subscriptions' THEN 'customer_service'
                        WHEN 'invoices' THEN 'invoice' WHEN 'payments' THEN 'payment' END AS entity, calls
          FROM zoho_sync_apiusage) AS u
    GROUP BY GROUPING SETS ((day, entity), (day))
),
runs AS (
    SELECT (started_at AT TIME ZONE 'UTC')::date AS day, sum(rate_limited) AS throttled,
        sum(budget_wait_seconds) AS waited
    FROM zoho_sync_syncrun GROUP BY 1
)
SELECT d.day, e.entity, coalesce(l.attempts, 0), coalesce(l.successes, 0), coalesce(l.failures, 0), l.avg_ms,
    l.p95_ms, coalesce(u.calls, 0), CASE WHEN e.entity = 'all' THEN coalesce(r.throttled, 0) ELSE 0 END,
    CASE WHEN e.entity = 'all' THEN round(coalesce(r.waited, 0)::numeric, 3)::float ELSE 0 END,
    d.day < (now() AT TIME ZONE 'UTC')::date, now()
FROM days AS d CROSS JOIN entities AS e
    LEFT JOIN logs AS l ON l.day = d.day AND l.entity = e.entity
    LEFT JOIN usage AS u ON u.day = d.day AND u.entity = e.entity
    LEFT JOIN runs AS r ON r.day = d.day;
"""

# (part, the table whose emptiness says the part is missing, its SQL, the tables whose plain indexes are rebuilt)
PARTS = (
    ("core", "zoho_sync_customer", CORE, ("zoho_sync_customer", "zoho_sync_synclog")),
    ("billing", "zoho_sync_invoice", BILLING, ()),
    ("runs", "zoho_sync_syncrun", RUNS, ()),
    ("usage", "zoho_sync_apiusage", USAGE, ()),
    ("metrics", "monitoring_dailymetric", METRICS, ()),
)
RUNS_FINISHED = 3000


def create_database(pg: str, db: str) -> bool:
    """Create the database unless it exists; True when created."""
    with psycopg.connect(f"{pg}/postgres", autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [db]).fetchone():
            return False
        conn.execute(f'CREATE DATABASE "{db}"')
        return True


def drop_database(pg: str, db: str) -> None:
    with psycopg.connect(f"{pg}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


def django_env(url: str) -> dict[str, str]:
    """The environment a benchmark runs Django with against `url` (no .env file, DEBUG on, the test client's host)."""
    return {"DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "config.settings", "DEBUG": "true",
            "DJANGO_ENV_FILE": "/nonexistent", "ALLOWED_HOSTS": "testserver", "LOG_LEVEL": "ERROR"}


def migrate(url: str) -> None:
    """Run the app's migrations on the database (every time: a kept database gets the migrations added since)."""
    subprocess.run([sys.executable, str(ROOT / "manage.py"), "migrate", "-v0", "--skip-checks"], check=True,
                   env={**os.environ, **django_env(url)})


def _is_empty(conn: psycopg.Connection, table: str) -> bool:
    return not conn.execute(sql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(sql.Identifier(table))).fetchone()[0]


def _plain_indexes(conn: psycopg.Connection, table: str) -> list[tuple[str, str]]:
    """The table's indexes that back no constraint (not the primary key, not a unique constraint): name, definition."""
    return conn.execute(
        "SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
        "WHERE x.indrelid = %s::regclass AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.oid)",
        [table]).fetchall()


def fill(url: str, customers: int, logs: int) -> None:
    """Fill every part whose table is empty (all of them in a new database), then VACUUM ANALYZE."""
    with psycopg.connect(url, autocommit=True) as conn:
        started = time.monotonic()
        missing = [part for part in PARTS if _is_empty(conn, part[1])]
        if not missing:
            return
        conn.execute("SET maintenance_work_mem = '512MB'")
        for _name, _table, text, rebuilt in missing:
            with conn.transaction():  # a part is filled whole or not at all
                indexes = [index for table in rebuilt for index in _plain_indexes(conn, table)]
                for name, _definition in indexes:
                    conn.execute(f'DROP INDEX "{name}"')
                for statement in text.format(customers=customers, logs=logs, runs=RUNS_FINISHED).split(";\n"):
                    if statement.strip():
                        conn.execute(statement)
                for _name, definition in indexes:
                    conn.execute(definition)
        conn.execute("VACUUM ANALYZE")  # what autovacuum does to an append-only table soon after
        elapsed = time.monotonic() - started
        if missing[0][0] == "core":
            print(f"filled {customers:,} customers, {customers // 10:,} services, {logs:,} sync-log rows in "
                  f"{elapsed:.0f} s")
        else:
            print(f"filled the missing parts ({', '.join(part[0] for part in missing)}) in {elapsed:.0f} s")
        if any(part[0] != "core" for part in missing):
            print("  with " + summary(conn))


SUMMARY = """
SELECT (SELECT count(*) FROM zoho_sync_customerservice WHERE sync_status = 'blocked'),
    (SELECT count(*) FROM zoho_sync_invoice), (SELECT count(*) FROM zoho_sync_invoice WHERE sync_status = 'blocked'),
    (SELECT count(*) FROM zoho_sync_payment), (SELECT count(*) FROM zoho_sync_payment WHERE sync_status = 'blocked'),
    (SELECT count(*) FROM zoho_sync_syncrun), (SELECT count(*) FROM zoho_sync_syncrun WHERE status = 'running'),
    (SELECT count(*) FROM zoho_sync_apiusage), (SELECT count(*) FROM monitoring_dailymetric)
"""


def summary(conn: psycopg.Connection) -> str:
    """The rows of the smaller tables (exact counts: each is small), in one line."""
    services, invoices, invoices_blocked, payments, payments_blocked, runs, running, usage, metrics = conn.execute(
        SUMMARY).fetchone()
    return (f"{services:,} blocked services, {invoices:,} invoices ({invoices_blocked:,} blocked), {payments:,} "
            f"payments ({payments_blocked:,} blocked), {runs:,} sync runs ({running} running), {usage:,} API-usage "
            f"rows, {metrics:,} daily metrics")


def prepare(pg: str, db: str, customers: int, logs: int) -> str:
    """Create (unless it exists), migrate and fill (the parts still empty) the database; return its URL."""
    create_database(pg, db)
    url = f"{pg}/{db}"
    migrate(url)
    fill(url, customers, logs)
    return url
