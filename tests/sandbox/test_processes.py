"""The sandbox seen from other processes: the admin prefix, the state file, and `manage.py zoho_sandbox`."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from tests.openapi_support import PROJECT_ROOT
from zoho_sync.client import codes
from zoho_sync.sandbox import ManualClock, SandboxConfig, ZohoSandbox

from .conftest import ORG_HEADER

ADMIN_SCRIPT = """
import json, sys, requests
url = sys.argv[1] + "/__sandbox__"
out = {}
out["configure"] = requests.post(url + "/configure", json={"per_minute": 2, "send_retry_after": "true"}).json()
out["seed"] = requests.post(url + "/seed", json={"resource": "customers",
                                                 "records": [{"display_name": "From Another Process"}]}).json()
out["fail_next"] = requests.post(url + "/fail_next", json={"method": "GET", "path": "/plans", "status": 500,
                                                          "code": "INTERNAL_ERROR"}).json()
out["bad"] = requests.post(url + "/configure", json={"no_such_setting": 1}).status_code
out["unknown"] = requests.get(url + "/nope").status_code
out["wrong_method"] = requests.get(url + "/reset").status_code
print(json.dumps(out))
"""


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "PYTHONUNBUFFERED": "1",
            "DJANGO_ENV_FILE": "/nonexistent/.env", "SECRET_KEY": "test-only-secret-key-not-for-production"}


def test_admin_prefix_from_another_process(zoho_sandbox: ZohoSandbox) -> None:
    result = subprocess.run([sys.executable, "-c", ADMIN_SCRIPT, zoho_sandbox.url], capture_output=True, text=True,
                            env=_env(), timeout=30, check=True)
    out = json.loads(result.stdout)
    assert out["configure"]["config"]["per_minute"] == 2 and zoho_sandbox.config.send_retry_after is True
    assert out["seed"]["records"][0]["display_name"] == "From Another Process"
    assert out["fail_next"]["rule"]["code"] == codes.INTERNAL_ERROR.code
    assert (out["bad"], out["unknown"], out["wrong_method"]) == (400, 404, 405)
    headers = zoho_sandbox.headers()
    assert requests.get(f"{zoho_sandbox.base_url}/plans", headers=headers, timeout=5).status_code == 500
    statuses = [requests.get(f"{zoho_sandbox.base_url}/customers", headers=headers, timeout=5).status_code
                for _ in range(3)]
    assert statuses == [200, 200, 429]  # per_minute=2 set by the other process; the injected 500 did not count
    admin = f"{zoho_sandbox.url}/__sandbox__"
    logged = requests.get(f"{admin}/requests", params={"path": "/customers"}, timeout=5).json()["requests"]
    assert [e["status"] for e in logged] == statuses
    counters = requests.get(f"{admin}/counters", timeout=5).json()["counters"]
    assert counters["throttled"] == {"44": 1} and counters["by_status"]["500"] == 1
    assert requests.get(f"{admin}/records/customers", timeout=5).json()["records"][0]["display_name"] == \
        "From Another Process"
    state = requests.get(f"{admin}/state", timeout=5).json()
    assert state["counts"]["customers"] == 1 and state["base_url"] == zoho_sandbox.base_url
    assert requests.post(f"{admin}/clock", json={"advance": 3600}, timeout=5).json()["now"] > state["now"]
    assert requests.post(f"{admin}/expire_tokens", timeout=5).json()["ok"] is True
    assert requests.post(f"{admin}/reset", timeout=5).json() == {"ok": True}
    assert zoho_sandbox.records("customers") == [] and zoho_sandbox.config.per_minute == 100


def test_admin_prefix_never_shows_secrets(zoho_sandbox: ZohoSandbox) -> None:
    admin = f"{zoho_sandbox.url}/__sandbox__"
    configured = requests.post(f"{admin}/configure", json={"webhook_secret": "canary-webhook-secret-91"},
                               timeout=5).text
    state = requests.get(f"{admin}/state", timeout=5).text
    config = zoho_sandbox.config
    for secret in (config.client_secret, config.refresh_token, config.webhook_secret):
        assert secret not in configured and secret not in state
    assert json.loads(state)["config"]["client_secret"] == "<redacted>"
    assert json.loads(state)["config"]["client_id"] == config.client_id


def test_state_file_survives_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "sandbox.json"
    clock = ManualClock()
    with ZohoSandbox(clock=clock, state_file=str(state), state_interval=0.05) as first:
        token = first.access_token()
        headers = first.headers(token)
        created = requests.post(f"{first.base_url}/customers", json={"display_name": "Persisted"}, headers=headers,
                                timeout=5).json()["customer"]
        deadline = time.monotonic() + 3
        while not state.exists() and time.monotonic() < deadline:  # saved soon after the write, not only at stop
            time.sleep(0.02)
        assert state.exists()
    with ZohoSandbox(clock=clock, state_file=str(state)) as second:
        got = requests.get(f"{second.base_url}/customers/{created['customer_id']}", headers=headers, timeout=5)
        assert got.json()["customer"]["display_name"] == "Persisted"  # the old token still works too
        again = requests.post(f"{second.base_url}/customers", json={"display_name": "Next"}, headers=headers,
                              timeout=5).json()["customer"]
        assert int(again["customer_id"]) > int(created["customer_id"])  # the id counter was kept
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temporary file behind


# What a shell does to `command &` when it has no job control: SIGINT ignored, then exec (which keeps it so).
IGNORE_SIGINT = ["-c", "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_IGN); "
                       "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])"]
# Distinctive credentials the command reads from settings (here: the environment) and must never print.
CANARY_SECRET = "canary-client-secret-7f3a9c1e5b2d4f6a8c0e"
CANARY_REFRESH = "1000.canaryrefresh9d8c7b6a5f4e3d2c1b0a.77e1"
CANARY_ENV = {"ZOHO_CLIENT_ID": "1000.CANARYCLIENTID", "ZOHO_CLIENT_SECRET": CANARY_SECRET,
              "ZOHO_REFRESH_TOKEN": CANARY_REFRESH, "ZOHO_ORGANIZATION_ID": "777000111"}


@dataclass
class Running:
    """A `manage.py zoho_sandbox` process, the ZOHO_*=value lines it printed, and all of its output."""

    process: subprocess.Popen[str]
    env: dict[str, str]
    lines: list[str] = field(default_factory=list)
    reader: threading.Thread | None = None

    def stop(self) -> int:
        """SIGINT, as Ctrl-C sends; the exit status (the process is killed after 20 s)."""
        self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(timeout=20)
        finally:
            if self.process.poll() is None:
                self.process.kill()
            if self.reader:
                self.reader.join(timeout=5)

    @property
    def output(self) -> str:
        return "".join(self.lines)


def _start_command(*args: str, sigint_ignored: bool = False, env: dict[str, str] | None = None) -> Running:
    launcher = IGNORE_SIGINT if sigint_ignored else []
    command = [sys.executable, *launcher, str(PROJECT_ROOT / "manage.py"), "zoho_sandbox", "--port", "0", *args]
    process = subprocess.Popen(command, cwd=PROJECT_ROOT, env={**_env(), **(env or {})}, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    running = Running(process, {})
    arrived: queue.Queue[str] = queue.Queue()

    def read() -> None:
        for line in process.stdout:
            running.lines.append(line)
            arrived.put(line)

    running.reader = threading.Thread(target=read, daemon=True)
    running.reader.start()
    deadline = time.monotonic() + 60
    while "ZOHO_ORGANIZATION_ID" not in running.env:
        try:
            line = arrived.get(timeout=max(0.1, deadline - time.monotonic()))
        except queue.Empty:
            process.kill()
            raise AssertionError("zoho_sandbox printed no settings:\n" + running.output) from None
        key, sep, value = line.strip().partition("=")
        if sep and key.startswith("ZOHO_"):
            running.env[key] = value
    return running


def test_management_command_serves_and_stops(tmp_path: Path) -> None:
    state = tmp_path / "demo-state.json"
    sandbox = _start_command("--state-file", str(state), "--per-minute", "50", "--allow-items-without-product",
                             env=CANARY_ENV)
    env = sandbox.env
    try:
        assert (env["ZOHO_CLIENT_ID"], env["ZOHO_ORGANIZATION_ID"]) == ("1000.CANARYCLIENTID", "777000111")
        assert "ZOHO_CLIENT_SECRET" not in env and "ZOHO_REFRESH_TOKEN" not in env
        session = requests.Session()
        token = session.post(f"{env['ZOHO_ACCOUNTS_URL']}/oauth/v2/token", timeout=5, params={
            "refresh_token": CANARY_REFRESH, "client_id": env["ZOHO_CLIENT_ID"],
            "client_secret": CANARY_SECRET, "grant_type": "refresh_token"}).json()["access_token"]
        headers = {"Authorization": f"Zoho-oauthtoken {token}", ORG_HEADER: env["ZOHO_ORGANIZATION_ID"]}
        response = session.post(f"{env['ZOHO_API_BASE_URL']}/customers", json={"display_name": "Demo Ltd"},
                                headers=headers, timeout=5)
        assert response.status_code == 201
        state_now = session.get(env["ZOHO_ACCOUNTS_URL"] + "/__sandbox__/state", timeout=5).json()
        assert state_now["config"]["per_minute"] == 50
        assert state_now["config"]["require_item_product_id"] is False
    finally:
        assert sandbox.stop() == 0
    assert "Demo Ltd" in state.read_text()
    # Started like a background job (SIGINT inherited as ignored), it must still stop on SIGINT.
    sandbox = _start_command("--state-file", str(state), sigint_ignored=True)
    try:
        records = requests.get(sandbox.env["ZOHO_ACCOUNTS_URL"] + "/__sandbox__/records/customers", timeout=5).json()
        assert [r["display_name"] for r in records["records"]] == ["Demo Ltd"]
    finally:
        assert sandbox.stop() == 0
    assert "Zoho sandbox stopped." in sandbox.output


def test_management_command_never_prints_secrets() -> None:
    sandbox = _start_command(env=CANARY_ENV)
    assert sandbox.stop() == 0
    output = sandbox.output
    assert "Zoho sandbox stopped." in output
    for secret in (CANARY_SECRET, CANARY_REFRESH):
        assert secret not in output and secret[:12] not in output
    assert "ZOHO_CLIENT_SECRET: the value in your settings (cana…)" in output
    assert "ZOHO_REFRESH_TOKEN: the value in your settings (1000…)" in output
    assert "ZOHO_CLIENT_ID=1000.CANARYCLIENTID" in output and "ZOHO_ORGANIZATION_ID=777000111" in output


def test_management_command_names_the_demo_defaults_without_printing_them() -> None:
    blank = dict.fromkeys(CANARY_ENV, "")
    sandbox = _start_command(env=blank)
    assert sandbox.stop() == 0
    defaults = SandboxConfig()
    assert defaults.client_secret not in sandbox.output and defaults.refresh_token not in sandbox.output
    assert "ZOHO_CLIENT_SECRET: the sandbox's demo value, DEFAULT_CLIENT_SECRET" in sandbox.output
    assert sandbox.env["ZOHO_CLIENT_ID"] == defaults.client_id
