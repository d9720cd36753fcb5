"""Every zoho_* command, as `manage.py <command> --help` shows it: each option says what it does and its default,
each command says its exit codes, and every --entity takes the one set of names (with the old ones as aliases)."""

from __future__ import annotations

import argparse
import re
from io import StringIO

import pytest
from django.core.management import get_commands, load_command_class
from django.core.management.base import CommandError

from zoho_sync.sync import specs

# Django's own options on every command: documented by Django.
BUILT_IN = {"help", "version", "verbosity", "settings", "pythonpath", "traceback", "no_color", "force_color",
            "skip_checks"}
COMMANDS = sorted(name for name in get_commands() if name.startswith("zoho_"))
# The required arguments a command's parser needs beside --entity, to parse at all.
REQUIRED = {"zoho_import": ["data.csv"]}


def parser_of(name: str) -> tuple[object, argparse.ArgumentParser]:
    command = load_command_class(get_commands()[name], name)
    return command, command.create_parser("manage.py", name)


def own_options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions if a.dest not in BUILT_IN]


def has_default(action: argparse.Action) -> bool:
    """A default worth stating: not a flag's False, not "none given", not an empty list."""
    if action.required or isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
        return False
    return action.default not in (None, [], argparse.SUPPRESS)


def test_every_zoho_command_is_walked():
    assert {"zoho_backfill", "zoho_retry_failed", "zoho_reconcile", "zoho_import", "zoho_metrics",
            "zoho_prune_logs", "zoho_check_connection", "zoho_sandbox", "zoho_health_check", "zoho_alert_failed",
            "zoho_demo", "zoho_seed_demo", "zoho_schedules"} <= set(COMMANDS)


@pytest.mark.parametrize("name", COMMANDS)
def test_every_option_has_help_that_states_its_default(name):
    _, parser = parser_of(name)
    for action in own_options(parser):
        option = "/".join(action.option_strings) or action.dest
        assert action.help and len(action.help) > 10, f"{name} {option} has no help"
        if has_default(action):
            assert "default" in action.help.casefold(), f"{name} {option}: the help does not state its default"
            if isinstance(action.default, (int, float, str)) and not isinstance(action.default, bool):
                shown = f"{action.default:,}" if isinstance(action.default, int) else str(action.default)
                assert str(action.default) in action.help or shown in action.help, \
                    f"{name} {option}: the help names no default {action.default!r}: {action.help!r}"


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_documents_its_exit_codes(name):
    command, parser = parser_of(name)
    text = f"{command.help}\n{parser.epilog or ''}"
    assert re.search(r"\bExit 0\b", text, re.IGNORECASE), f"{name}: --help says no exit codes: {text!r}"
    # The help is what an operator reads: --help itself runs and shows it.
    out = StringIO()
    parser.print_help(out)
    assert re.search(r"\bExit\s+0\b", out.getvalue(), re.IGNORECASE)


ENTITY_COMMANDS = [name for name in COMMANDS
                   if any("--entity" in a.option_strings for a in parser_of(name)[1]._actions)]


def test_the_entity_commands_are_all_there():
    assert {"zoho_backfill", "zoho_retry_failed", "zoho_reconcile", "zoho_metrics", "zoho_import"} <= \
        set(ENTITY_COMMANDS)


@pytest.mark.parametrize("name", ENTITY_COMMANDS)
def test_every_entity_option_takes_the_one_set_of_names_and_the_old_spellings(name):
    _, parser = parser_of(name)
    (entity,) = [a for a in parser._actions if "--entity" in a.option_strings]
    names = ["customers", "service_packages", "customer_services", "invoices", "payments", "credit_notes"]
    assert [c for c in entity.choices if c != "all"] == names == list(specs.ENTITY_CHOICES)
    for name_ in names:
        assert name_ in entity.help
    aliases = {"plans": "service_packages", "subscriptions": "customer_services", "customer": "customers",
               "service_package": "service_packages", "customer_service": "customer_services",
               "invoice": "invoices", "payment": "payments", "Plans": "service_packages",
               "customer-services": "customer_services", "service_packages": "service_packages",
               "credit_note": "credit_notes", "refunds": "credit_notes", "creditnotes": "credit_notes"}
    for given, meant in aliases.items():
        parsed = parser.parse_args([*REQUIRED.get(name, []), "--entity", given])
        assert parsed.entity == meant, (name, given)
        assert specs.specs_for(parsed.entity) == specs.specs_for(given)
    assert "plans" in entity.help and "subscriptions" in entity.help, "the help names the old spellings"
    with pytest.raises(CommandError, match=r"invalid choice: 'products' \(choose from 'customers', 'service_packages'"):
        parser.parse_args([*REQUIRED.get(name, []), "--entity", "products"])


def test_zoho_sandbox_help_lists_its_hooks_and_faults():
    """`manage.py zoho_sandbox --help`, as run from a shell: every admin hook the sandbox answers and every fault
    setting it draws from, with its exit codes."""
    import subprocess
    import sys
    from pathlib import Path

    from zoho_sync.sandbox import admin
    from zoho_sync.sandbox.config import FAULT_RATES
    from zoho_sync.sandbox.faults import KINDS

    root = Path(__file__).resolve().parents[2]
    shown = subprocess.run([sys.executable, "manage.py", "zoho_sandbox", "--help"], cwd=root, capture_output=True,
                           text=True, timeout=60, env={"PATH": "/usr/bin:/bin", "DEBUG": "true"})
    assert shown.returncode == 0, shown.stderr
    text = shown.stdout
    assert "/__sandbox__/" in text and "Exit 0" in text
    for hook in (*admin.GETS, *admin.POSTS):
        assert re.search(rf"\b{hook}\b", text), f"--help does not name the hook {hook}"
    for fault in (*FAULT_RATES, "latency", "timeout_seconds", "fault_methods", "fault_paths", *KINDS):
        assert re.search(rf"\b{fault}\b", text), f"--help does not name the fault {fault}"
