"""Benchmark: the Django admin on a big database (PostgreSQL): each page fast, its query count flat, no unbounded COUNT.

Usage: .venv/bin/python bench/admin_scale.py [--customers 1000000] [--logs 10000000] [--repeat 5]
                                             [--small-customers 10000] [--small-logs 100000]
                                             [--keep-db NAME] [--pg postgres://...] [--verbose]

Two databases, filled by bench/scale_data.py (SQL alone; see there what the rows are): a big one (--customers,
--logs) and a small one (--small-customers, --small-logs). Both are scratch databases dropped afterwards, unless
--keep-db NAME: then the big one is NAME and the small one NAME_small, both kept, filled only while empty and
migrated on every run (so a new migration, a view say, is in place before measuring).

Each page is fetched through Django's test client by a superuser (`bench-admin`, created when missing, logged in
with force_login), in a process of its own per database: one warm-up request, then --repeat timed requests (best
and median), the SQL captured (CaptureQueriesContext). Pages:
  dashboard, the failed-records list, the customer changelist (plain, searched for the middle customer's account
  number: CT-SCALE-00500000 on a million, filtered to failed), the sync-log changelist (plain, filtered to failed),
  and the change page of a failed customer (one whose service is blocked behind it).

A page passes when, on the big database:
- it answers 200 (404 is reported as "missing (404)");
- its median time is at most 300 ms;
- it makes no more queries than on the small database (the query count does not grow with the data);
- it runs no unbounded COUNT. The rule (syntactic, on the captured SQL): every SELECT whose select list counts
  (COUNT(...), also under GROUP BY) and whose FROM names a big relation (a table or view the planner estimates at
  100,000 rows or more, e.g. zoho_sync_customer, zoho_sync_synclog) passes only when
    a. it reads a subquery with a LIMIT (`SELECT COUNT(*) FROM (SELECT ... LIMIT 10001) subquery`), or
    b. its WHERE (some AND-ed term; an OR only when each branch qualifies) compares a column that leads an index
       of that table with =, IN, <, <=, >, >=, BETWEEN, or LIKE 'prefix%' (no leading wildcard, no UPPER()):
       sync_status, a created_at range, the primary key, an account number...
  Anything else (`SELECT COUNT(*) FROM zoho_sync_synclog`, a count under a '%term%' search) is unbounded: it is
  printed and the page fails. The rule does not judge selectivity (sync_status = 'synced' is 99.5% of customers):
  the 300 ms limit does.
Queries taking 50 ms or more on the big database are printed too (the SQL truncated; --verbose prints it whole).
Exit code 0 when every page passes, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import scale_data  # noqa: E402

TARGET_MS = 300
SLOW_QUERY_MS = 50
BIG_ROWS = 100_000
BENCH_USER = "bench-admin"
PAGES = (  # (name, path); {search} and {failed_customer} are filled per database
    ("dashboard", "/admin/dashboard/"),
    ("failures list", "/admin/zoho_sync/syncfailure/"),
    ("customers", "/admin/zoho_sync/customer/"),
    ("customers, searched", "/admin/zoho_sync/customer/?q={search}"),
    ("customers, failed", "/admin/zoho_sync/customer/?sync_status__exact=failed"),
    ("sync log", "/admin/zoho_sync/synclog/"),
    ("sync log, failed", "/admin/zoho_sync/synclog/?status__exact=failed"),
    ("failed customer", "/admin/zoho_sync/customer/{failed_customer}/change/"),
)


# --- The unbounded-COUNT rule -------------------------------------------------------------------------------------

LITERAL = re.compile(r"'(?:[^']|'')*'")
CLAUSE = re.compile(r"\b(FROM|WHERE|GROUP\s+BY|HAVING|WINDOW|ORDER\s+BY|LIMIT|OFFSET|FETCH|FOR\s+UPDATE)\b", re.I)
SET_OPERATOR = re.compile(r"\b(?:UNION|INTERSECT|EXCEPT)(?:\s+ALL)?\b", re.I)
GROUP = re.compile(r"\(@(\d+)\)")
PREDICATE = re.compile(
    r"""^(?:(?P<alias>"\w+"|\w+)\.)?"(?P<column>\w+)"(?P<cast>::text)?\s*
        (?P<op><=|>=|<>|!=|=|<|>|\bIN\b|\bBETWEEN\b|\bLIKE\b)\s*(?P<rhs>.*)$""", re.I | re.S | re.X)


def _mask_literals(sql: str) -> str:
    """Each string literal becomes 'x', or '%' when it starts with a wildcard (parentheses inside are gone)."""
    return LITERAL.sub(lambda m: "'%'" if m.group(0).startswith("'%") else "'x'", sql)


def _groups(sql: str) -> tuple[list[str], int]:
    """Split SQL into parenthesised groups: each group's text with its inner groups replaced by (@k)."""
    texts: list[str] = []

    def walk(i: int) -> tuple[int, int]:
        buffer = []
        while i < len(sql):
            if sql[i] == "(":
                k, i = walk(i + 1)
                buffer.append(f"(@{k})")
            elif sql[i] == ")":
                texts.append("".join(buffer))
                return len(texts) - 1, i + 1
            else:
                buffer.append(sql[i])
                i += 1
        texts.append("".join(buffer))
        return len(texts) - 1, i

    root, _ = walk(0)
    return texts, root


def _clauses(statement: str) -> dict[str, str]:
    """The top-level clauses of one flat SELECT: select list, FROM, WHERE, LIMIT..."""
    marks = [(m.start(), m.end(), re.sub(r"\s+", " ", m.group(1).upper())) for m in CLAUSE.finditer(statement)]
    start = re.search(r"\bSELECT\b", statement, re.I)
    parts = {"SELECT": statement[start.end():marks[0][0]] if marks else statement[start.end():]}
    for n, (_, end, name) in enumerate(marks):
        parts.setdefault(name, statement[end:marks[n + 1][0]] if n + 1 < len(marks) else statement[end:])
    return parts


def _split(text: str, word: str) -> list[str]:
    return [part.strip() for part in re.split(rf"\b{word}\b", text, flags=re.I)]


class CountRule:
    def __init__(self, big: set[str], index_leads: dict[str, set[str]]):
        self.big, self.index_leads = big, index_leads

    def unbounded(self, sql: str) -> bool:
        """Whether the query holds a COUNT over a big relation that is neither LIMITed nor restricted by an index."""
        texts, _ = _groups(_mask_literals(sql))
        for text in texts:
            for statement in SET_OPERATOR.split(text):
                if not re.search(r"\bSELECT\b", statement, re.I):
                    continue
                parts = _clauses(statement)
                if re.search(r"\bCOUNT\s*\(@\d+\)", parts["SELECT"], re.I) and not self._bounded(statement, texts):
                    return True
        return False

    def _bounded(self, statement: str, texts: list[str]) -> bool:
        parts = _clauses(statement)
        if "LIMIT" in parts or "FETCH" in parts:
            return True
        source = parts.get("FROM", "")
        aliases = {}  # alias or table name -> table, for the big relations read here
        for m in re.finditer(r'"(\w+)"(?:\s+(?:AS\s+)?("?\w+"?))?', GROUP.sub(" ", source), re.I):
            if m.group(1) in self.big:
                aliases[m.group(1)] = m.group(1)
                if m.group(2) and m.group(2).upper() not in ("ON", "INNER", "LEFT", "RIGHT", "FULL", "CROSS", "JOIN"):
                    aliases[m.group(2).strip('"')] = m.group(1)
        for k in GROUP.findall(source):  # a subquery in FROM: bounded when it is (a LIMIT, or an indexed WHERE)
            inner = texts[int(k)]
            if re.match(r"\s*SELECT\b", inner, re.I) and not all(
                    self._bounded(s, texts) for s in SET_OPERATOR.split(inner)):
                return False
        if not aliases:
            return True
        return self._indexed(parts.get("WHERE", ""), aliases, texts)

    def _indexed(self, where: str, aliases: dict[str, str], texts: list[str]) -> bool:
        """Some AND-ed term of the WHERE is an indexed predicate on a big relation read (an OR: each branch)."""
        return any(self._term(term, aliases, texts) for term in _split(where, "AND") if term)

    def _term(self, term: str, aliases: dict[str, str], texts: list[str]) -> bool:
        whole = GROUP.fullmatch(term)
        if whole:  # a parenthesised expression
            inner = texts[int(whole.group(1))]
            if re.match(r"\s*SELECT\b", inner, re.I):
                return False
            branches = _split(inner, "OR")
            if len(branches) > 1:
                return all(self._indexed(branch, aliases, texts) for branch in branches)
            return self._indexed(inner, aliases, texts)
        if re.search(r"\bOR\b", term, re.I):
            return False
        m = PREDICATE.match(term)
        if not m:
            return False
        alias = (m.group("alias") or "").strip('"')
        table = aliases.get(alias) if alias else (next(iter(set(aliases.values()))) if len(set(aliases.values()))
                                                   == 1 else None)
        if table is None or m.group("column") not in self.index_leads.get(table, set()):
            return False
        op, rhs = m.group("op").upper(), m.group("rhs").strip()
        if op in ("<>", "!="):
            return False
        if op == "LIKE":
            return rhs.startswith("'x'")  # a literal not starting with a wildcard
        if m.group("cast"):
            return False
        return not rhs.upper().startswith("NULL")


# --- One database, measured in a process of its own -------------------------------------------------------------


def _relations(connection) -> tuple[set[str], dict[str, set[str]]]:
    """The big relations (tables by their statistics, views by the planner's estimate) and each table's index-leading
    columns."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT relname, relkind, reltuples FROM pg_class WHERE relnamespace = 'public'::regnamespace "
                       "AND relkind IN ('r', 'p', 'v', 'm')")
        big = set()
        for name, kind, rows in cursor.fetchall():
            if kind == "v":
                try:
                    cursor.execute(f'EXPLAIN (FORMAT JSON) SELECT * FROM "{name}"')  # noqa: S608 (a name from pg_class)
                except Exception as exc:  # a broken view: its pages are judged by their times and status alone
                    print(f"could not estimate the rows of view {name}: {exc}", file=sys.stderr)
                    continue
                plan = cursor.fetchone()[0]
                rows = (json.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"]["Plan Rows"]
            if rows >= BIG_ROWS:
                big.add(name)
        cursor.execute("SELECT t.relname, a.attname FROM pg_index x JOIN pg_class t ON t.oid = x.indrelid "
                       "JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = x.indkey[0] "
                       "WHERE t.relnamespace = 'public'::regnamespace")
        leads: dict[str, set[str]] = {}
        for table, column in cursor.fetchall():
            leads.setdefault(table, set()).add(column)
    return big, leads


def measure(out: str, search: str, repeat: int) -> None:
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from zoho_sync.models import Customer, CustomerService

    user_model = get_user_model()
    user = user_model.objects.filter(username=BENCH_USER).first()
    if user is None:
        user = user_model.objects.create_superuser(BENCH_USER, "bench@example.com", None)
    client = Client()
    client.force_login(user)
    failed = (CustomerService.objects.filter(sync_status="blocked", customer__sync_status="failed")
              .order_by("customer_id").values_list("customer_id", flat=True).first()
              or Customer.objects.filter(sync_status="failed").order_by("pk").values_list("pk", flat=True).first())
    big, leads = _relations(connection)
    rule = CountRule(big, leads)

    def get(path: str):
        try:
            return client.get(path), ""
        except Exception as exc:  # the page's own error: reported, the other pages still measured
            return None, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:300]

    pages = []
    for name, template in PAGES:
        path = template.format(search=search, failed_customer=failed)
        page = {"name": name, "path": path, "status": None, "error": "", "times": [], "queries": [],
                "unbounded": [], "slow": []}
        pages.append(page)
        response, page["error"] = get(path)  # warm-up
        page["status"] = response.status_code if response is not None else None
        if page["status"] != 200:
            continue
        last: list[dict] = []
        for _ in range(repeat):
            with CaptureQueriesContext(connection) as captured:
                started = time.perf_counter()
                response, page["error"] = get(path)
                page["times"].append((time.perf_counter() - started) * 1000)
            page["queries"].append(len(captured))
            last = captured.captured_queries
            page["status"] = response.status_code if response is not None else None
            if page["status"] != 200:
                break
        for query in last:
            if rule.unbounded(query["sql"]) and query["sql"] not in page["unbounded"]:
                page["unbounded"].append(query["sql"])
            if float(query["time"]) * 1000 >= SLOW_QUERY_MS:
                page["slow"].append((float(query["time"]) * 1000, query["sql"]))
        page["slow"].sort(reverse=True)
    Path(out).write_text(json.dumps({"pages": pages, "big": sorted(big)}))


def run_measure(url: str, search: str, repeat: int) -> dict:
    """Measure one database in a child process (its own Django, connection and caches)."""
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        done = subprocess.run([sys.executable, __file__, "--measure", out.name, "--search", search, "--repeat",
                               str(repeat)], env={**os.environ, **scale_data.django_env(url)},
                              capture_output=True, text=True)
        if done.returncode != 0:
            print(f"measuring {url.rsplit('/', 1)[-1]} failed:\n{done.stderr[-3000:]}")
            return {"pages": [{"name": name, "path": path, "status": None, "error": "the measuring process failed",
                               "times": [], "queries": [], "unbounded": [], "slow": []} for name, path in PAGES],
                    "big": []}
        return json.loads(Path(out.name).read_text())


# --- The report ---------------------------------------------------------------------------------------------------


def _state(page: dict) -> str:
    if page["error"]:
        return "error"
    if page["status"] == 404:
        return "missing (404)"
    if page["status"] != 200:
        return f"HTTP {page['status']}"
    return ""


def _short(sql: str, verbose: bool) -> str:
    sql = re.sub(r"\s+", " ", sql)
    return sql if verbose or len(sql) <= 400 else sql[:400] + " ..."


def report(small: dict, big: dict, verbose: bool) -> bool:
    rows, passed = [], True
    for s, b in zip(small["pages"], big["pages"], strict=True):
        problems = list(dict.fromkeys(state for state in (_state(b), _state(s)) if state))
        best = median = None
        if not problems:
            best, median = min(b["times"]), statistics.median(b["times"])
            if median > TARGET_MS:
                problems.append(f"slow ({median:.0f} ms)")
            if max(b["queries"]) > max(s["queries"]):
                problems.append(f"queries grow ({max(s['queries'])} -> {max(b['queries'])})")
            if b["unbounded"]:
                problems.append(f"{len(b['unbounded'])} unbounded COUNT")
        passed = passed and not problems
        rows.append((b["path"], "-" if best is None else f"{best:.1f}", "-" if median is None else f"{median:.1f}",
                     str(max(s["queries"])) if s["queries"] else "-", str(max(b["queries"])) if b["queries"] else "-",
                     "FAIL: " + ", ".join(problems) if problems else "ok"))
    header = ("page", "ms best", "ms median", "queries (small)", "queries (big)", "verdict")
    width = max(len(row[0]) for row in (*rows, header)) + 2
    line = f"{{:<{width}}}{{:>9}}{{:>11}}{{:>17}}{{:>15}}  {{}}"
    print("\n" + line.format(*header))
    for row in rows:
        print(line.format(*row))
    for s, b in zip(small["pages"], big["pages"], strict=True):
        for label, page in (("small", s), ("big", b)):
            if page["error"]:
                print(f"\n{page['path']} ({label} database): {page['error']}")
        for sql in b["unbounded"]:
            print(f"\n{b['path']}: unbounded COUNT:\n  {_short(sql, verbose)}")
        for ms, sql in b["slow"]:
            print(f"\n{b['path']}: {ms:.0f} ms:\n  {_short(sql, verbose)}")
    print(f"\nbig relations (100,000 rows or more): {', '.join(big['big']) or 'none'}")
    print(f"target: each page at most {TARGET_MS} ms warm, queries flat, no unbounded COUNT: "
          f"{'PASS' if passed else 'FAIL'}")
    return passed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--logs", type=int, default=10_000_000)
    parser.add_argument("--small-customers", type=int, default=10_000)
    parser.add_argument("--small-logs", type=int, default=100_000)
    parser.add_argument("--pg", default=scale_data.DEFAULT_PG)
    parser.add_argument("--repeat", type=int, default=5, help="timed requests per page, after one to warm up")
    parser.add_argument("--keep-db", default="", help="use (and keep) this database and NAME_small; filled when empty")
    parser.add_argument("--verbose", action="store_true", help="print the flagged queries whole")
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # the child: measure DATABASE_URL, write JSON here
    parser.add_argument("--search", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        measure(args.measure, args.search, args.repeat)
        return
    big_db = args.keep_db or f"zoho_bench_admin_{os.getpid()}"
    small_db = f"{big_db}_small"
    try:
        results = []
        for label, db, customers, logs in (("small", small_db, args.small_customers, args.small_logs),
                                           ("big", big_db, args.customers, args.logs)):
            print(f"{label} database {db}: {customers:,} customers, {logs:,} sync-log rows")
            url = scale_data.prepare(args.pg, db, customers, logs)
            results.append(run_measure(url, f"CT-SCALE-{customers // 2:08d}", args.repeat))
        passed = report(*results, verbose=args.verbose)
    finally:
        if not args.keep_db:
            for db in (small_db, big_db):
                scale_data.drop_database(args.pg, db)
    sys.exit(0 if passed else 1)


if __name__ == "__main__":
    main()
