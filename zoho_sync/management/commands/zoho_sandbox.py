"""`manage.py zoho_sandbox`: run the local Zoho Billing sandbox for the demo until Ctrl-C.

Prints the environment variables that point the app at it. Credentials come from the ZOHO_* settings when
set, else the sandbox's demo defaults; the client secret and refresh token are never printed, only a short
prefix saying which value is in use. The only Django-aware part of the sandbox.
"""

from __future__ import annotations

import argparse
import signal
import threading
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from zoho_sync.redaction import MASK
from zoho_sync.sandbox import SandboxConfig, ZohoSandbox
from zoho_sync.sandbox import admin as sandbox_admin
from zoho_sync.sandbox.config import FAULT_RATES
from zoho_sync.sandbox.faults import KINDS

CREDENTIALS = {"ZOHO_CLIENT_ID": "client_id", "ZOHO_CLIENT_SECRET": "client_secret",
               "ZOHO_REFRESH_TOKEN": "refresh_token", "ZOHO_ORGANIZATION_ID": "organization_id"}
SECRETS = {"ZOHO_CLIENT_SECRET": "DEFAULT_CLIENT_SECRET", "ZOHO_REFRESH_TOKEN": "DEFAULT_REFRESH_TOKEN"}
SHOWN_PREFIX = 4


def mask_secret(value: str) -> str:
    """A few leading characters and "…": enough to tell which secret is in use, never enough to use it."""
    if len(value) < 4 * SHOWN_PREFIX:  # too short to show any of it
        return MASK
    return f"{value[:SHOWN_PREFIX]}…"


def parse_faults(values: list[str]) -> dict[str, str]:
    """`error_rate=0.05,latency=0.2,fault_methods=POST,PUT` -> settings; a piece without "=" continues a list."""
    faults: dict[str, str] = {}
    last = None
    for value in values:
        for piece in filter(None, (p.strip() for p in value.split(","))):
            if "=" in piece:
                last, _, setting = piece.partition("=")
                last = last.strip().replace("-", "_")
                faults[last] = setting.strip()
            elif last is not None:
                faults[last] += f",{piece}"
            else:
                raise CommandError(f"--faults expects key=value pairs, got {piece!r}")
    return faults


def epilog() -> str:
    """Its exit codes, hooks and faults, from the sandbox's own tables (admin.py's docstring, config.py, faults.py),
    so --help names every one there is."""
    defaults = SandboxConfig()
    hooks = "\n".join(f"  {line}" for line in sandbox_admin.__doc__.strip().splitlines()[1:] if line.strip())
    rates = ", ".join(FAULT_RATES)
    return f"""Exit 0: stopped by Ctrl-C or SIGTERM; 1: bad arguments, or it cannot start (the port is taken, a
--faults setting is unknown or bad, the --state-file cannot be read).

Hooks: while it runs, http://HOST:PORT/__sandbox__/<hook> scripts it from any process
(the tests use the same methods in-process, tests/sandbox_fixtures.py):
{hooks}
  e.g. curl -X POST http://127.0.0.1:8765/__sandbox__/fail_next -d '{{"path": "/customers", "status": 500, "times": 3}}'
       (fail_next kinds: {", ".join(KINDS)}; path "/" for every call)
       curl -X POST http://127.0.0.1:8765/__sandbox__/revoke_refresh_token
       curl -X POST http://127.0.0.1:8765/__sandbox__/configure -d '{{"daily": 50}}'

Faults: --faults KEY=VALUE (or POST configure {{KEY: VALUE}} while it runs) sets any sandbox setting
(zoho_sync/sandbox/config.py); the fault ones:
  {rates}:
      the fraction of matching requests that fail that way (default 0: none)
  timeout_seconds: how long a timeout hangs (default {defaults.timeout_seconds:g})
  latency: seconds added to every request (default {defaults.latency:g})
  fault_methods, fault_paths: the requests the rates and latency apply to (default: every one)
  seed: the seed of the random draw (default {defaults.seed}; --seed)
  count_unauthorized: a 401 counts toward the limits (default {defaults.count_unauthorized})
  token_ttl: seconds an access token lives (default {defaults.token_ttl})
  per_minute, daily, concurrency, lockout_seconds: the limits (defaults {defaults.per_minute}, {defaults.daily},
      {defaults.concurrency}, {defaults.lockout_seconds:g}; 0 switches one off; also the options above)"""


class Command(BaseCommand):
    help = ("Run the local Zoho Billing sandbox (127.0.0.1 by default) until Ctrl-C and print its settings; "
            "its hooks and faults are listed below.")
    requires_system_checks: list[str] = []  # the sandbox needs none of the app's settings to be valid

    def create_parser(self, prog_name, subcommand, **kwargs):
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        parser.formatter_class = argparse.RawDescriptionHelpFormatter
        parser.epilog = epilog()
        return parser

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
        parser.add_argument("--port", type=int, default=8765, help="port (default 8765; 0 picks a free one)")
        defaults = SandboxConfig()
        parser.add_argument("--per-minute", type=int,
                            help=f"requests per minute per organization (default {defaults.per_minute}; 0 = off)")
        parser.add_argument("--daily", type=int,
                            help=f"daily request quota per organization (default {defaults.daily}; 0 = off)")
        parser.add_argument("--concurrency", type=int,
                            help=f"concurrent in-flight requests (default {defaults.concurrency}; 0 = off)")
        parser.add_argument("--lockout", type=float,
                            help=f"seconds locked out after a per-minute breach (default {defaults.lockout_seconds:g})")
        parser.add_argument("--retry-after", action="store_true",
                            help="send Retry-After on 429 answers (default: not sent)")
        parser.add_argument("--faults", action="append", default=[], metavar="KEY=VALUE[,KEY=VALUE]",
                            help="fault settings, e.g. error_rate=0.05,latency=0.2,lose_response_rate=0.01,"
                                 "fault_methods=POST (repeatable; default: no faults; see Faults below)")
        parser.add_argument("--seed", type=int, help=f"seed for random faults (default {defaults.seed})")
        parser.add_argument("--state-file",
                            help="JSON file to load at start and save to while running (default: none, the state is "
                                 "lost at exit)")
        parser.add_argument("--webhook-url", help="POST each event here (default: no webhooks)")
        parser.add_argument("--webhook-secret", help="sign webhooks with this secret (default: unsigned)")
        parser.add_argument("--allow-duplicate-names", action="store_true",
                            help="accept a second customer with the same display_name")
        parser.add_argument("--allow-items-without-product", action="store_true",
                            help="accept invoice lines with a name and no product_id (Zoho requires product_id)")
        parser.add_argument("--demo", action="store_true",
                            help="the demo's Zoho, as ./bin/demo ran it and its .env expects: port 8765, "
                                 "6000 requests a minute, no daily quota, its data in var/sandbox-state.json "
                                 "(options given as well win)")

    def handle(self, *args: Any, **options: Any) -> None:
        if options.get("demo"):
            from pathlib import Path

            from zoho_sync.demo_sandbox import DEMO_DAILY, DEMO_PER_MINUTE, DEMO_STATE_FILE

            options["per_minute"] = DEMO_PER_MINUTE if options["per_minute"] is None else options["per_minute"]
            options["daily"] = DEMO_DAILY if options["daily"] is None else options["daily"]
            if not options["state_file"]:
                state_file = Path(settings.BASE_DIR) / DEMO_STATE_FILE
                state_file.parent.mkdir(exist_ok=True)
                options["state_file"] = str(state_file)
        config: dict[str, Any] = {name: str(getattr(settings, key, "") or "").strip()
                                  for key, name in CREDENTIALS.items()}
        config = {k: v for k, v in config.items() if v}
        from_settings = set(config)
        for option, name in (("per_minute", "per_minute"), ("daily", "daily"), ("concurrency", "concurrency"),
                             ("lockout", "lockout_seconds"), ("seed", "seed"), ("webhook_url", "webhook_url"),
                             ("webhook_secret", "webhook_secret")):
            if options[option] is not None:
                config[name] = options[option]
        if options["retry_after"]:
            config["send_retry_after"] = True
        if options["allow_duplicate_names"]:
            config["check_duplicate_display_name"] = False
        if options["allow_items_without_product"]:
            config["require_item_product_id"] = False
        config.update(parse_faults(options["faults"]))
        try:
            sandbox = ZohoSandbox(host=options["host"], port=options["port"], state_file=options["state_file"],
                                  **config)
            sandbox.start()
        except (ValueError, OSError) as exc:
            raise CommandError(f"cannot start the sandbox: {exc}") from exc
        stop = threading.Event()
        # Our own handlers for both signals, rather than KeyboardInterrupt: a background job started by a
        # non-interactive shell (`manage.py zoho_sandbox &`, or a test run started that way) inherits SIGINT
        # as *ignored*, so Python installs no KeyboardInterrupt and Ctrl-C or `kill -INT` did nothing at all.
        previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            self._announce(sandbox, options["state_file"], from_settings=from_settings)
            while not stop.wait(1.0):  # a timed wait, so the signal is seen on every platform
                pass
        except KeyboardInterrupt:
            pass
        finally:
            for sig, handler in previous.items():
                if handler is not None:  # None: a handler not set from Python, nothing to restore
                    signal.signal(sig, handler)
            sandbox.stop()
            self.stdout.write("Zoho sandbox stopped.")

    def _announce(self, sandbox: ZohoSandbox, state_file: str | None, *, from_settings: set[str]) -> None:
        config = sandbox.config
        lines = [
            f"Zoho Billing sandbox listening on {sandbox.url} (Ctrl-C to stop).",
            f"Admin hooks: {sandbox.url}/__sandbox__/state",
        ]
        if state_file:
            lines.append(f"State file: {state_file}")
        lines += [
            "Point the app at it with these environment variables:",
            f"ZOHO_API_BASE_URL={sandbox.base_url}",
            f"ZOHO_ACCOUNTS_URL={sandbox.accounts_url}",
            f"ZOHO_CLIENT_ID={config.client_id}",
            f"ZOHO_ORGANIZATION_ID={config.organization_id}",
            "The secrets are not printed:",
        ]
        for key, default_name in SECRETS.items():
            name = CREDENTIALS[key]
            value = getattr(config, name)
            if name in from_settings:
                origin = "the value in your settings"
            elif value == getattr(SandboxConfig(), name):
                origin = f"the sandbox's demo value, {default_name} in zoho_sync/sandbox/config.py"
            else:
                origin = "the value given with --faults"
            lines.append(f"  {key}: {origin} ({mask_secret(value)})")
        self.stdout.write("\n".join(lines))
        self.stdout.flush()
