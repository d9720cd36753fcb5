"""Serving it as production does: gunicorn with the production settings (DEBUG off, HTTPS-only behind a proxy that
terminates TLS), the static files collected and served by WhiteNoise; and the deployment files that start it.

The gunicorn test is an HTTP client of a real server on the test database: it logs into the admin as a person's
browser does (CSRF cookie and token, the session cookie, Origin header) and fetches the admin's CSS and the
dashboard's JavaScript through the hashed names the pages link.
"""

from __future__ import annotations

import contextlib
import os
import re
import runpy
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import time
from http.cookies import SimpleCookie
from pathlib import Path

import pytest
import requests
import yaml
from django.contrib.auth import get_user_model

from bench.slow_clients import TEMPLATE, SlowClients, health, nginx, nginx_binary, template_variables
from tests.zoho_sync.test_triggers import Cluster, database_url

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse battery staple 42"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def production_env(static_root: Path, port: int) -> dict[str, str]:
    """The production settings (config.settings, no .env), behind a TLS-terminating proxy on this machine."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SECURE_", "STATIC_", "Q_", "ZOHO_"))}
    return {
        **env,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DJANGO_ENV_FILE": "/nonexistent/.env",
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_PROXY_SSL_HEADER": "HTTP_X_FORWARDED_PROTO,https",
        "DATABASE_URL": database_url(),
        "STATIC_ROOT": str(static_root),
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": "2",
        "REDIS_URL": "",
        "PYTHONUNBUFFERED": "1",
    }


class Browser:
    """What a browser does that requests does not do over plain http: keep the Secure cookies. The proxy's
    header says the request came over https, so Django sets Secure cookies; this client sends them back."""

    def __init__(self, base: str):
        self.base, self.cookies = base, {}
        self.http = requests.Session()

    def request(self, method: str, path: str, *, https: bool = True, **kwargs) -> requests.Response:
        headers = {"Accept-Encoding": "gzip", **kwargs.pop("headers", {})}
        if https:
            headers["X-Forwarded-Proto"] = "https"
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        response = self.http.request(method, self.base + path, headers=headers, allow_redirects=False, timeout=30,
                                     **kwargs)
        for header in response.raw.headers.getlist("Set-Cookie"):
            for name, morsel in SimpleCookie(header).items():
                self.cookies[name] = morsel.value
        return response


@pytest.fixture
def gunicorn(transactional_db, tmp_path, request):
    """collectstatic, then gunicorn as the Procfile starts it, on the test database (a test changes its environment
    by indirect parametrization with a dict)."""
    static_root, port = tmp_path / "static", free_port()
    env = {**production_env(static_root, port), **getattr(request, "param", {})}
    collected = subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "1"], cwd=ROOT,
                               env=env, capture_output=True, text=True, timeout=120)
    assert collected.returncode == 0, collected.stderr
    assert (static_root / "staticfiles.json").is_file(), "collectstatic wrote no manifest"
    web = procfile()["web"]
    log = tmp_path / "gunicorn.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", *shlex.split(web)], cwd=ROOT, env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, f"gunicorn exited ({proc.returncode}):\n{log.read_text()[-3000:]}"
            with contextlib.suppress(requests.ConnectionError, requests.Timeout):  # a busy machine: slow to start
                requests.get(base + "/health/", timeout=2, allow_redirects=False)
                break
            assert time.monotonic() < deadline, f"gunicorn did not answer:\n{log.read_text()[-3000:]}"
            time.sleep(0.2)
        yield base, log
    finally:
        Cluster(proc, log).stop()  # SIGTERM, then SIGKILL to whatever is left of its session


def procfile() -> dict[str, str]:
    """The Procfile's processes, name -> command, as honcho reads them."""
    entries = [line.split(":", 1) for line in (ROOT / "Procfile").read_text().splitlines()
               if line.strip() and not line.startswith("#")]
    return {name.strip(): command.strip() for name, command in entries}


def linked_static(html: str, suffix: str) -> list[str]:
    return re.findall(rf'(/static/[^"\']+\.{suffix})', html)


def test_gunicorn_with_debug_off_logs_into_the_admin_and_serves_its_static_files(gunicorn):
    base, log = gunicorn
    get_user_model().objects.create_superuser("ops", "ops@example.com", PASSWORD)
    browser = Browser(base)

    # Plain http is sent to https, with HSTS on the https answers: the production settings are in force.
    plain = browser.request("GET", "/admin/login/", https=False)
    assert plain.status_code == 301
    assert plain.headers["Location"] == base.replace("http://", "https://") + "/admin/login/"
    login_page = browser.request("GET", "/admin/login/?next=/admin/")
    assert login_page.status_code == 200
    assert login_page.headers["Strict-Transport-Security"].startswith("max-age=31536000")
    assert "csrftoken" in browser.cookies

    # The page links the admin's CSS under its hashed name; WhiteNoise serves it compressed, cached for good.
    stylesheets = linked_static(login_page.text, "css")
    assert stylesheets and all(re.search(r"\.[0-9a-f]{12}\.css$", href) for href in stylesheets), stylesheets
    css = browser.request("GET", stylesheets[0])
    assert css.status_code == 200 and css.headers["Content-Type"].startswith("text/css")
    assert css.headers.get("Content-Encoding") == "gzip" and "immutable" in css.headers["Cache-Control"]
    assert "body" in css.text  # requests decoded the gzip: it is the stylesheet itself

    # A wrong password is refused; the right one logs in (CSRF token from the form, Origin checked on https).
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login_page.text).group(1)
    origin = {"Origin": base.replace("http://", "https://"), "Referer": base.replace("http://", "https://") + "/"}
    refused = browser.request("POST", "/admin/login/?next=/admin/", headers=origin,
                              data={"csrfmiddlewaretoken": token, "username": "ops", "password": "wrong"})
    assert refused.status_code == 200 and "Please enter the correct username and password" in refused.text
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', refused.text).group(1)
    logged_in = browser.request("POST", "/admin/login/?next=/admin/", headers=origin,
                                data={"csrfmiddlewaretoken": token, "username": "ops", "password": PASSWORD})
    assert logged_in.status_code == 302 and logged_in.headers["Location"] == "/admin/", logged_in.text[:500]
    assert "sessionid" in browser.cookies

    index = browser.request("GET", "/admin/")
    assert index.status_code == 200 and "Log out" in index.text
    dashboard = browser.request("GET", "/admin/dashboard/")
    assert dashboard.status_code == 200
    scripts = [src for src in linked_static(dashboard.text, "js") if "dashboard" in src]
    assert scripts and re.search(r"dashboard\.[0-9a-f]{12}\.js$", scripts[0]), scripts
    script = browser.request("GET", scripts[0])
    assert script.status_code == 200 and "javascript" in script.headers["Content-Type"]

    # DEBUG is off: an unknown page is a plain 404, no URL list, no traceback.
    missing = browser.request("GET", "/no-such-page/")
    assert missing.status_code == 404 and "URLconf" not in missing.text and "Traceback" not in missing.text
    assert PASSWORD not in log.read_text()


def test_the_deployment_files_start_the_same_processes():
    """What CI can check of the Dockerfile and compose.yaml without a Docker engine (none runs here): they start
    the Procfile's commands, from the same pinned requirements, and compose wires every service it needs."""
    processes = procfile()
    assert processes == {"web": "gunicorn -c config/gunicorn.py config.wsgi:application",
                         "worker": "python manage.py qcluster"}
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "pip install --no-cache-dir -r requirements.txt -c constraints.txt" in dockerfile
    assert "collectstatic --noinput" in dockerfile
    # The container's health is the process and its database (/health/live/), never Zoho's: an outage there must
    # not take the admin away.
    assert "/health/live/" in re.search(r"^HEALTHCHECK .*\n.*$", dockerfile, re.MULTILINE).group(0)
    cmd = re.search(r"^CMD (\[.*\])$", dockerfile, re.MULTILINE).group(1)
    assert " ".join(yaml.safe_load(cmd)) == processes["web"]
    for source in re.findall(r"^COPY (\S+)", dockerfile, re.MULTILINE):
        assert source == "." or (ROOT / source).exists(), source

    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    assert {"web", "worker", "db", "redis", "migrate"} <= services.keys()
    assert services["worker"]["command"] == processes["worker"]
    app_env = services["web"]["environment"]
    assert app_env["Q_BROKER"] == "redis" and app_env["REDIS_URL"].startswith("redis://redis:")
    assert app_env["DATABASE_URL"].startswith("postgres://") and "@db:5432/" in app_env["DATABASE_URL"]
    assert services["worker"]["environment"] == app_env
    assert services["web"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def session_processes(sid: int) -> list[str]:
    """The processes still running in a session (ps -s), as "pid command" lines. -ww: whole command lines, so a
    long checkout path does not push "qcluster" or "gunicorn" past ps's 80-column cut."""
    listed = subprocess.run(["ps", "-ww", "-o", "pid=,args=", "-s", str(sid)], capture_output=True, text=True)
    return [line.strip() for line in listed.stdout.splitlines() if line.strip()]


def test_bin_serve_runs_the_procfile_with_debug_off_and_stops_all_of_it(transactional_db, tmp_path):
    """./bin/serve: the deploy steps, then gunicorn and a cluster from the Procfile; SIGTERM (or Ctrl-C) stops
    every process it started, the cluster's workers included."""
    port = free_port()
    env = {**production_env(tmp_path / "static", port), "PORT": str(port), "SECURE_PROXY_SSL_HEADER": "",
           "GUNICORN_BIND": "", "WEB_CONCURRENCY": "1", "Q_WORKERS": "1"}
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        serve = subprocess.Popen([str(ROOT / "bin" / "serve")], cwd=ROOT, env=env, stdout=out,
                                 stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline, page = time.monotonic() + 120, None
        while page is None:
            assert serve.poll() is None, f"bin/serve exited ({serve.returncode}):\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"bin/serve did not answer:\n{log.read_text()[-3000:]}"
            with contextlib.suppress(requests.ConnectionError):
                page = requests.get(f"http://127.0.0.1:{port}/admin/login/", timeout=5)
            time.sleep(0.3)
        assert page.status_code == 200  # plain http on this machine: no redirect to https
        css = linked_static(page.text, "css")
        assert css and re.search(r"\.[0-9a-f]{12}\.css$", css[0])  # collected by bin/serve, hashed
        assert requests.get(f"http://127.0.0.1:{port}{css[0]}", timeout=5).status_code == 200
        deadline = time.monotonic() + 30
        while not any("qcluster" in p for p in session_processes(serve.pid)):
            assert time.monotonic() < deadline, f"no cluster started:\n{log.read_text()[-3000:]}"
            time.sleep(0.3)
        assert any("gunicorn" in p for p in session_processes(serve.pid))
    finally:
        serve.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            serve.wait(timeout=60)
        left = session_processes(serve.pid)
        with contextlib.suppress(ProcessLookupError):
            for line in left:
                os.kill(int(line.split()[0]), signal.SIGKILL)
    assert serve.returncode is not None, "bin/serve did not stop on SIGTERM"
    assert left == [], f"bin/serve left processes running:\n{left}\n{log.read_text()[-2000:]}"
    text = log.read_text()
    assert "web | " in text and "worker | " in text


def nginx_value(text: str, directive: str) -> str:
    """The value of a directive that appears once in the server block (comments left out)."""
    values = re.findall(rf"^\s*{directive}\s+([^;]+);", text, re.MULTILINE)
    assert len(values) == 1, (directive, values)
    return values[0].strip()


def nginx_seconds(value: str) -> float:
    number, unit = re.fullmatch(r"(\d+)(ms|s|m)?", value).groups()
    return int(number) * {"ms": 0.001, "s": 1, "m": 60, None: 1}[unit]


def test_the_compose_proxy_and_the_nginx_config_agree(settings):
    """compose's proxy renders the repo's nginx config with values that match the web process: gunicorn's port,
    the webhook body cap; the config bounds slow headers and bodies and overwrites the forwarded headers; web is
    reachable through the proxy alone."""
    services = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]
    proxy, web = services["proxy"], services["web"]
    assert proxy["image"].startswith("nginx:")
    assert [name for name, service in services.items() if service.get("ports")] == ["proxy"]
    published, listen = proxy["ports"][0].split(":")
    assert published == "8000"  # http://localhost:8000/admin/ as before
    env = proxy["environment"]
    assert template_variables() == {"PROXY_LISTEN", "PROXY_UPSTREAM", "ZOHO_WEBHOOK_MAX_BYTES"} <= env.keys()
    assert env["PROXY_LISTEN"] == listen
    # Upstream: the web service on gunicorn's port (config/gunicorn.py binds 0.0.0.0:$PORT, the Dockerfile's PORT).
    port = re.search(r"\bPORT=(\d+)", (ROOT / "Dockerfile").read_text()).group(1)
    assert env["PROXY_UPSTREAM"] == f"web:{port}" and web["expose"] == [port]
    # One body cap: the variable the web process reads, with the settings' default.
    assert env["ZOHO_WEBHOOK_MAX_BYTES"] == web["environment"]["ZOHO_WEBHOOK_MAX_BYTES"]
    default = re.fullmatch(r"\$\{ZOHO_WEBHOOK_MAX_BYTES:-(\d+)\}", env["ZOHO_WEBHOOK_MAX_BYTES"]).group(1)
    assert int(default) == settings.ZOHO_WEBHOOK_MAX_BYTES
    # The template folder where the image's entrypoint renders *.template into conf.d.
    assert f"./{TEMPLATE.parent.relative_to(ROOT)}:/etc/nginx/templates:ro" in proxy["volumes"]
    assert TEMPLATE.name.endswith(".conf.template")
    assert proxy["depends_on"]["web"]["condition"] == "service_started"  # /health/'s 503 must not keep it down

    text = "\n".join(line.split("#", 1)[0] for line in TEMPLATE.read_text().splitlines())
    assert re.search(r"upstream django \{\s*server \$\{PROXY_UPSTREAM\};\s*\}", text)
    assert nginx_value(text, "listen") == "${PROXY_LISTEN}"
    assert set(re.findall(r"proxy_pass\s+([^;]+);", text)) == {"http://django"}
    webhooks = re.search(r"location /zoho/webhooks/ \{(.*?)\n\s*\}", text, re.DOTALL).group(1)
    assert "client_max_body_size ${ZOHO_WEBHOOK_MAX_BYTES};" in webhooks
    # Slow headers and bodies bounded to about 10 s, whole requests only, and nginx waits longer than gunicorn.
    assert nginx_seconds(nginx_value(text, "client_header_timeout")) <= 10
    assert nginx_seconds(nginx_value(text, "client_body_timeout")) <= 10
    assert nginx_value(text, "proxy_request_buffering") == "on"
    gunicorn_timeout = runpy.run_path(str(ROOT / "config" / "gunicorn.py"))["timeout"]
    assert nginx_seconds(nginx_value(text, "proxy_read_timeout")) > gunicorn_timeout
    # What Django trusts (SECURE_PROXY_SSL_HEADER=HTTP_X_FORWARDED_PROTO,https) is set by nginx, never passed on.
    headers = dict(re.findall(r"proxy_set_header\s+(\S+)\s+([^;]+);", text))
    assert headers["X-Forwarded-Proto"] == "$scheme" and headers["X-Forwarded-For"] == "$remote_addr"
    assert headers["Host"] == "$http_host"  # with its port: Django's CSRF origin check compares it


def raw_post(port: int, length: int, body: bytes = b"") -> str:
    """A POST /zoho/webhooks/ declaring `length` bytes and sending `body`: the answer's status line."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(f"POST /zoho/webhooks/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     f"Content-Length: {length}\r\nConnection: close\r\n\r\n".encode() + body)
        answer = b""
        while b"\r\n" not in answer and (chunk := sock.recv(4096)):
            answer += chunk
    return answer.split(b"\r\n", 1)[0].decode()


def wait_for(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


@pytest.mark.skipif(nginx_binary() is None, reason="nginx is not installed (Debian/Ubuntu: apt-get install -y "
                    "nginx): the repo's proxy config cannot be run in front of gunicorn here")
@pytest.mark.parametrize("gunicorn", [{"SECURE_SSL_REDIRECT": "false"}], indirect=True)
def test_nginx_from_the_repo_config_keeps_health_answering_while_slow_clients_hold_connections(gunicorn, tmp_path,
                                                                                                  settings):
    """nginx rendered from deploy/nginx/default.conf.template in front of the gunicorn of the Procfile (2 workers
    x 4 threads): 12 clients sending a webhook body a byte at a time, more than gunicorn has threads, and one that
    stalls. /health/ through nginx keeps answering within 1 s; nginx closes the stalled one after its 10-s body
    timeout and holds the trickling ones without passing them on; a body once whole reaches gunicorn."""
    base, log = gunicorn
    cap = settings.ZOHO_WEBHOOK_MAX_BYTES

    def webhook_posts() -> int:
        return log.read_text().count('"POST /zoho/webhooks/ HTTP/1.0"')

    with nginx(int(base.rsplit(":", 1)[1]), tmp_path / "nginx", cap) as port:
        proxy = f"http://127.0.0.1:{port}"
        slow = SlowClients(port, byte_every=0.5)
        trickling = [slow.open("trickle") for _ in range(12)]
        stalled = slow.open("stalled")
        slow.start()
        try:
            started, answers = time.monotonic(), []
            while time.monotonic() - started < 12.5:
                answers.append(health(port, timeout=5))
                time.sleep(0.25)
            assert len(answers) >= 20
            assert all(status in (200, 503) and seconds < 1.0 for status, seconds in answers), answers
            assert stalled.closed is not None and 9.0 <= stalled.closed <= 12.5, stalled
            assert [c for c in trickling if c.closed is not None] == []
            assert len(trickling[0].pending) < 4096 - 20  # they were sending all along
            assert webhook_posts() == 0  # nginx holds them: nothing reached gunicorn

            # Once a body is whole, nginx passes the request on and the view answers it.
            slow.finish(trickling[0])
            wait_for(lambda: trickling[0].closed is not None, 10, "the finished request got no answer")
            assert trickling[0].answer.startswith("HTTP/1.1 ") and " 408 " not in trickling[0].answer
            wait_for(lambda: webhook_posts() == 1, 5, "the finished request did not reach gunicorn")
            assert [c for c in trickling[1:] if c.closed is not None] == []
        finally:
            slow.close()

        # The webhook body cap is the view's: one byte over is refused by nginx, the cap itself passes.
        assert raw_post(port, cap + 1) == "HTTP/1.1 413 Request Entity Too Large"
        assert webhook_posts() == 1
        assert " 413 " not in raw_post(port, cap, b"{" + b" " * (cap - 2) + b"}")
        wait_for(lambda: webhook_posts() == 2, 5, "a body of exactly the cap did not reach gunicorn")

        # nginx sets X-Forwarded-Proto itself: a client's "https" is not believed (no HSTS through the proxy),
        # where gunicorn reached directly takes the header as Django is told to (SECURE_PROXY_SSL_HEADER).
        forged = requests.get(proxy + "/health/", headers={"X-Forwarded-Proto": "https"}, timeout=5)
        assert forged.status_code in (200, 503) and "Strict-Transport-Security" not in forged.headers
        direct = requests.get(base + "/health/", headers={"X-Forwarded-Proto": "https"}, timeout=5)
        assert "Strict-Transport-Security" in direct.headers
