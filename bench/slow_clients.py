"""Benchmark: `/health/` while slow clients hold connections open, straight to gunicorn, then through nginx.

Usage: .venv/bin/python bench/slow_clients.py [--slow 40] [--stalled 10] [--slow-headers 10] [--seconds 30]
                                              [--byte-every 1.0] [--workers N] [--threads N]
                                              [--database-url URL] [--skip-direct]

Target (issue 18, item 3): with 40 slow-body connections open, `GET /health/` through the proxy answers within 1 s,
every time.

1. Migrates a scratch SQLite database in a temporary folder (or uses --database-url, e.g. a PostgreSQL database
   of your own) and starts gunicorn as the Procfile does (`gunicorn -c config/gunicorn.py config.wsgi:application`,
   so config/gunicorn.py's workers and threads unless --workers/--threads) with DEBUG off, on a free port of
   127.0.0.1. Only loopback addresses are used.
2. Opens the slow clients, each a `POST /zoho/webhooks/` that never completes within the run:
   --slow slow-body connections send their headers (Content-Length: 4096) and then the body a byte every
   --byte-every seconds, except --stalled of them, which stop after the first byte of the body; --slow-headers
   more connections send even their request line and headers a byte every --byte-every seconds.
3. Meanwhile probes `/health/` four times a second, open loop, each probe on a new connection as a load balancer
   does, with a 5 s timeout; after --seconds closes everything.
4. Does it twice: straight to gunicorn, then through nginx started here from the repo's config
   (deploy/nginx/default.conf.template, rendered as the nginx image's entrypoint does; nginx runs in the
   foreground with its own temporary prefix, pid file, logs and temp paths) in front of a fresh gunicorn.

Prints for each: the /health/ probes (answered, timed out, status codes, latency p50 / p95 / max, within 1 s), the
slow connections the server closed (how many of each kind, after how long, with which answer), and the requests
that reached gunicorn (its access log). The verdict line "target: /health/ through nginx within 1 s with 40
slow-body connections open: PASS/FAIL"; exit status 0 on PASS, 1 on FAIL, 2 when nginx is not installed (the
direct figures are printed all the same; on Debian or Ubuntu: `apt-get install -y nginx`).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import re
import secrets
import select
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "deploy" / "nginx" / "default.conf.template"
SLOW_PATH = "/zoho/webhooks/"
TARGET_SECONDS = 1.0
PROBE_EVERY = 0.25
PROBE_TIMEOUT = 5.0
SLOW_BODY_LENGTH = 4096  # declared; never reached within a run at a byte a second


# --- gunicorn, as the Procfile starts it -----------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def procfile_web() -> list[str]:
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.startswith("web:"):
            return shlex.split(line.split(":", 1)[1])
    raise SystemExit("the Procfile has no web process")


def server_env(database_url: str, port: int, workers: int | None, threads: int | None) -> dict[str, str]:
    """The production settings (DEBUG off, no .env), plain http on this machine."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SECURE_", "Q_", "ZOHO_", "GUNICORN_"))}
    env.update({
        "DJANGO_SETTINGS_MODULE": "config.settings", "DJANGO_ENV_FILE": "/nonexistent/.env", "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(50), "ALLOWED_HOSTS": "127.0.0.1", "SECURE_SSL_REDIRECT": "false",
        "ZOHO_WEBHOOK_SECRET": secrets.token_hex(32), "DATABASE_URL": database_url, "REDIS_URL": "",
        "GUNICORN_BIND": f"127.0.0.1:{port}", "LOG_LEVEL": "WARNING", "PYTHONUNBUFFERED": "1",
    })
    if workers:
        env["WEB_CONCURRENCY"] = str(workers)
    if threads:
        env["GUNICORN_THREADS"] = str(threads)
    return env


def served_values(env: dict[str, str]) -> tuple[int, int, int]:
    """The workers and threads config/gunicorn.py gives, and the settings' ZOHO_WEBHOOK_MAX_BYTES, under env."""
    code = ("import runpy, django; from django.conf import settings; c = runpy.run_path('config/gunicorn.py'); "
            "django.setup(); print(c['workers'], c['threads'], settings.ZOHO_WEBHOOK_MAX_BYTES)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                         check=True).stdout.split()
    return int(out[0]), int(out[1]), int(out[2])


def wait_http(port: int, proc: subprocess.Popen, log: Path, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited ({proc.returncode}):\n{log.read_text(errors='replace')[-3000:]}")
        with contextlib.suppress(OSError, http.client.HTTPException):
            status, _ = health(port, timeout=2)
            if status:
                return
        if time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{what} did not answer within {timeout:g} s:\n{tail}")
        time.sleep(0.1)


@contextlib.contextmanager
def gunicorn(env: dict[str, str], log: Path):
    port = int(env["GUNICORN_BIND"].rsplit(":", 1)[1])
    with log.open("ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", *procfile_web()], cwd=ROOT, env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_http(port, proc, log, "gunicorn")
        yield port
    finally:
        stop(proc, grace=40)


def stop(proc: subprocess.Popen, grace: float, sig: int = signal.SIGTERM) -> None:
    """The signal to the process, then SIGKILL to its whole session (it was started in a session of its own)."""
    if proc.poll() is None:
        proc.send_signal(sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=grace)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


# --- nginx from the repo's config ------------------------------------------------------------------------------
def nginx_binary() -> str | None:
    return shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx")
                                          if os.access(p, os.X_OK)), None)


def render_template(values: dict[str, str], template: Path = TEMPLATE) -> str:
    """As the nginx image's entrypoint does (envsubst of the variables it is given): every ${NAME} replaced; a
    name without a value is an error here, not an empty string in nginx's config."""
    text = template.read_text()
    missing = sorted(set(re.findall(r"\$\{(\w+)\}", text)) - values.keys())
    if missing:
        raise KeyError(f"{template.name} needs {', '.join(missing)}")
    return re.sub(r"\$\{(\w+)\}", lambda m: values[m.group(1)], text)


def template_variables(template: Path = TEMPLATE) -> set[str]:
    return set(re.findall(r"\$\{(\w+)\}", template.read_text()))


@contextlib.contextmanager
def nginx(upstream_port: int, workdir: Path, max_bytes: int):
    """nginx in the foreground with the repo's server config (the webhook body cap max_bytes, the web process's
    ZOHO_WEBHOOK_MAX_BYTES), listening on a free port of 127.0.0.1; yields the port. Its pid file, logs and temp
    paths live in workdir."""
    binary = nginx_binary()
    if binary is None:
        raise FileNotFoundError("nginx is not installed (Debian/Ubuntu: apt-get install -y nginx)")
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    server = render_template({"PROXY_LISTEN": f"127.0.0.1:{port}", "PROXY_UPSTREAM": f"127.0.0.1:{upstream_port}",
                              "ZOHO_WEBHOOK_MAX_BYTES": str(max_bytes)})
    (workdir / "default.conf").write_text(server)
    temp = "\n".join(f"    {kind}_temp_path {workdir / kind};" for kind in ("client_body", "proxy", "fastcgi",
                                                                          "uwsgi", "scgi"))
    # As root, nginx's workers would run as nobody, who cannot write the temp paths of a private folder.
    user = "user root;\n" if os.geteuid() == 0 else ""
    (workdir / "nginx.conf").write_text(
        f"daemon off;\nworker_processes 1;\n{user}pid {workdir / 'nginx.pid'};\n"
        f"error_log {workdir / 'error.log'} info;\n"
        "events { worker_connections 1024; }\n"
        f"http {{\n    access_log {workdir / 'access.log'};\n{temp}\n    include {workdir / 'default.conf'};\n}}\n")
    log = workdir / "nginx.out"
    with log.open("ab") as out:
        proc = subprocess.Popen([binary, "-p", str(workdir), "-c", str(workdir / "nginx.conf"),
                                 "-e", str(workdir / "error.log")], stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        deadline = time.monotonic() + 20
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"nginx exited ({proc.returncode}):\n{log.read_text(errors='replace')}\n"
                                   f"{(workdir / 'error.log').read_text(errors='replace')[-2000:]}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            if time.monotonic() > deadline:
                raise RuntimeError("nginx did not listen within 20 s")
            time.sleep(0.05)
        yield port
    finally:
        stop(proc, grace=10)


# --- the clients -----------------------------------------------------------------------------------------------
def health(port: int, timeout: float = PROBE_TIMEOUT) -> tuple[int, float]:
    """GET /health/ on a new connection: (status, seconds)."""
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", "/health/", headers={"User-Agent": "bench/slow_clients.py"})
        response = conn.getresponse()
        response.read()
        return response.status, time.perf_counter() - started
    finally:
        conn.close()


@dataclass
class Probe:
    due: float
    status: int = 0  # 0: no answer (see error)
    seconds: float = 0.0
    error: str = ""


@dataclass
class SlowClient:
    kind: str  # "trickle", "stalled", "slow-headers"
    sock: socket.socket
    pending: bytes  # what is still to send, a byte at a time
    opened: float
    next_send: float
    closed: float | None = None  # seconds after it opened that the server closed it
    answer: str = ""  # the status line the server sent, if any; "EOF" or "reset" otherwise
    burst: bool = False  # send the rest at once (SlowClients.finish)


def slow_request(kind: str) -> bytes:
    return (f"POST {SLOW_PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"User-Agent: bench/slow_clients.py ({kind})\r\nContent-Length: {SLOW_BODY_LENGTH}\r\n\r\n").encode()


class SlowClients:
    """Connections that send a request a byte at a time, driven by one thread; each records when the server closed
    it and how (an answer such as 408, or a plain close)."""

    def __init__(self, port: int, byte_every: float):
        self.port, self.byte_every = port, byte_every
        self.clients: list[SlowClient] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="slow-clients", daemon=True)

    def open(self, kind: str) -> SlowClient:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        request, now = slow_request(kind), time.monotonic()
        if kind == "slow-headers":
            sock.sendall(request[:1])
            pending = request[1:]
        else:
            sock.sendall(request + b"{")  # the headers whole, the body's first byte
            pending = b"" if kind == "stalled" else b" " * (SLOW_BODY_LENGTH - 1)
        sock.setblocking(False)
        client = SlowClient(kind, sock, pending, now, now + self.byte_every)
        self.clients.append(client)
        return client

    def start(self) -> None:
        self._thread.start()

    def _closed(self, client: SlowClient, answer: str) -> None:
        client.closed = time.monotonic() - client.opened
        client.answer = answer
        with contextlib.suppress(OSError):
            client.sock.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            now = time.monotonic()
            live = [c for c in self.clients if c.closed is None]
            for client in live:
                if client.pending and (client.burst or now >= client.next_send):
                    try:
                        sent = client.sock.send(client.pending if client.burst else client.pending[:1])
                        client.pending = client.pending[sent:]
                        client.next_send = now + self.byte_every
                    except BlockingIOError:
                        pass
                    except OSError as error:
                        self._closed(client, type(error).__name__)
            live = [c for c in live if c.closed is None]
            if not live:
                time.sleep(0.05)
                continue
            readable, _, _ = select.select([c.sock for c in live], [], [], 0.05)
            for client in (c for c in live if c.sock in readable):
                try:
                    data = client.sock.recv(4096)
                except BlockingIOError:
                    continue
                except OSError as error:
                    self._closed(client, "reset" if isinstance(error, ConnectionResetError) else type(error).__name__)
                    continue
                self._closed(client, data.split(b"\r\n", 1)[0].decode("latin-1")[:40] if data else "EOF")

    def finish(self, client: SlowClient) -> None:
        """The rest of this client's request at once: the server's answer is then recorded as its close."""
        client.burst = True

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for client in self.clients:
            with contextlib.suppress(OSError):
                client.sock.close()


@dataclass
class Phase:
    name: str
    seconds: float
    probes: list[Probe] = field(default_factory=list)
    clients: list[SlowClient] = field(default_factory=list)
    reached: Counter = field(default_factory=Counter)  # requests in gunicorn's access log, by path


def run_phase(name: str, port: int, args: argparse.Namespace) -> Phase:
    phase = Phase(name, args.seconds)
    slow = SlowClients(port, args.byte_every)
    try:
        for i in range(args.slow):
            slow.open("stalled" if i < args.stalled else "trickle")
        for _ in range(args.slow_headers):
            slow.open("slow-headers")
        slow.start()
        start = time.monotonic()
        with ThreadPoolExecutor(max_workers=int(PROBE_TIMEOUT / PROBE_EVERY) + 8) as pool:
            futures = []
            i = 0
            while (due := i * PROBE_EVERY) < args.seconds:
                pause = start + due - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                probe = Probe(due)
                phase.probes.append(probe)
                futures.append(pool.submit(run_probe, port, probe))
                i += 1
            for future in futures:
                future.result()
    finally:
        slow.close()
    phase.clients = slow.clients
    return phase


def run_probe(port: int, probe: Probe) -> None:
    started = time.perf_counter()
    try:
        probe.status, probe.seconds = health(port)
    except (OSError, http.client.HTTPException) as error:
        probe.seconds = time.perf_counter() - started
        probe.error = "timeout" if isinstance(error, TimeoutError) else type(error).__name__


# --- the report ------------------------------------------------------------------------------------------------
def percentile(values: list[float], share: float) -> float:
    """Nearest rank."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, int(share * len(ordered) + 0.999999) - 1))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms"


def access_counts(log: Path, since: int) -> Counter:
    """Requests in gunicorn's access log (its output) after byte `since`, by method and path."""
    text = log.read_bytes()[since:].decode(errors="replace")
    return Counter(f"{m.group(1)} {m.group(2).split('?')[0]}"
                   for m in re.finditer(r'"(GET|POST|PUT|HEAD) (\S+) HTTP/[\d.]+"', text))


def report(phase: Phase) -> bool:
    """Prints the phase; True when every probe answered within the target."""
    probes = phase.probes
    answered = [p for p in probes if p.status]
    timed_out = [p for p in probes if p.error == "timeout"]
    errors = Counter(p.error for p in probes if p.error and p.error != "timeout")
    latency = [p.seconds for p in probes]  # a timed-out probe counts its whole timeout
    within = sum(1 for p in answered if p.seconds <= TARGET_SECONDS)
    print(f"\n{phase.name}")
    print(f"  /health/ probes     {len(probes):>4} over {phase.seconds:g} s (every {PROBE_EVERY:g} s, new connection "
          f"each): answered {len(answered)} {dict(Counter(p.status for p in answered))}, timed out (> "
          f"{PROBE_TIMEOUT:g} s) {len(timed_out)}" + (f", errors {dict(errors)}" if errors else ""))
    print(f"  /health/ latency    p50 {ms(percentile(latency, 0.5))}, p95 {ms(percentile(latency, 0.95))}, max "
          f"{ms(max(latency, default=0))} (a timeout counts as {PROBE_TIMEOUT:g} s); within {TARGET_SECONDS:g} s: "
          f"{within} of {len(probes)}")
    answered_late = [p for p in answered if p.seconds > TARGET_SECONDS]
    if answered_late or timed_out:
        first = min(answered_late + timed_out, key=lambda p: p.due)
        print(f"  first probe over {TARGET_SECONDS:g} s: sent at {first.due:.2f} s")
    print("  slow connections closed by the server during the run:")
    for kind in ("trickle", "stalled", "slow-headers"):
        clients = [c for c in phase.clients if c.kind == kind]
        if not clients:
            continue
        closed = [c for c in clients if c.closed is not None]
        when = sorted(c.closed for c in closed)
        answers = Counter(c.answer for c in closed)
        print(f"    {kind:<13} {len(closed):>3} of {len(clients):<3}"
              + (f" after {when[0]:.1f} s (first) / {percentile(when, 0.5):.1f} s (median) / {when[-1]:.1f} s "
                 f"(last), with {dict(answers)}" if closed else ""))
    reached = {k: v for k, v in phase.reached.items() if k != "GET /health/"}
    print(f"  requests that reached gunicorn: /health/ {phase.reached.get('GET /health/', 0)}, "
          f"others {reached or 0}")
    return bool(probes) and within == len(probes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slow", type=int, default=40, help="slow-body connections (default 40)")
    parser.add_argument("--stalled", type=int, default=10,
                        help="of the slow-body connections, those that stop after the first byte (default 10)")
    parser.add_argument("--slow-headers", type=int, default=10,
                        help="more connections sending their headers a byte at a time (default 10)")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of each run (default 30)")
    parser.add_argument("--byte-every", type=float, default=1.0, help="seconds between two bytes (default 1)")
    parser.add_argument("--workers", type=int, help="gunicorn workers (default: config/gunicorn.py's)")
    parser.add_argument("--threads", type=int, help="threads per worker (default: config/gunicorn.py's)")
    parser.add_argument("--database-url", help="a database of your own (default: a scratch SQLite file)")
    parser.add_argument("--skip-direct", action="store_true", help="only the run through nginx")
    args = parser.parse_args()
    if not 0 <= args.stalled <= args.slow:
        parser.error("--stalled must be between 0 and --slow")

    with tempfile.TemporaryDirectory(prefix="slow-clients-") as tmp:
        workdir = Path(tmp)
        database_url = args.database_url or f"sqlite:///{workdir / 'bench.sqlite3'}"
        env = server_env(database_url, free_port(), args.workers, args.threads)
        migrated = subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "--skip-checks", "-v", "0"],
                                  cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        if migrated.returncode:
            raise SystemExit(f"migrate failed:\n{migrated.stderr[-3000:]}")
        workers, threads, max_bytes = served_values(env)
        binary = nginx_binary()
        print(f"gunicorn: `{' '.join(procfile_web())}` with {workers} workers x {threads} threads (gthread) on "
              f"{database_url.split(':', 1)[0]}; nginx: {binary or 'not installed'}")
        print(f"slow clients: {args.slow} slow-body connections to POST {SLOW_PATH} (Content-Length "
              f"{SLOW_BODY_LENGTH}): {args.slow - args.stalled} send a byte every {args.byte_every:g} s, "
              f"{args.stalled} stall after the first byte; plus {args.slow_headers} sending their headers a byte "
              f"every {args.byte_every:g} s")
        log = workdir / "gunicorn.log"

        if not args.skip_direct:
            with gunicorn(env, log) as port:
                mark = log.stat().st_size
                phase = run_phase(f"straight to gunicorn (127.0.0.1:{port})", port, args)
                phase.reached = access_counts(log, mark)
            report(phase)

        if binary is None:
            print("\nnginx is not installed, so the run through the proxy was not made. Install it (Debian or "
                  "Ubuntu: `apt-get update && apt-get install -y nginx`) and run this again.")
            print("\ntarget: /health/ through nginx within 1 s with 40 slow-body connections open: NOT MEASURED")
            sys.exit(2)
        env["GUNICORN_BIND"] = f"127.0.0.1:{free_port()}"
        with gunicorn(env, log) as upstream, nginx(upstream, workdir / "nginx", max_bytes) as port:
            mark = log.stat().st_size
            phase = run_phase(f"through nginx (127.0.0.1:{port}, deploy/nginx/default.conf.template) in front of "
                              f"gunicorn (127.0.0.1:{upstream})", port, args)
            time.sleep(0.5)  # the access log's last lines
            phase.reached = access_counts(log, mark)
        passed = report(phase)
        print(f"\ntarget: /health/ through nginx within {TARGET_SECONDS:g} s with {args.slow} slow-body connections "
              f"open: {'PASS' if passed else 'FAIL'}")
        sys.exit(0 if passed else 1)


if __name__ == "__main__":
    main()
