"""docs/operations.md names only commands and schedules that exist, with options they take."""

from __future__ import annotations

import re
from pathlib import Path

from django.core.management import get_commands, load_command_class

from monitoring.schedules import SCHEDULES

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "operations.md"


def test_every_command_and_option_in_the_guide_exists():
    text = GUIDE.read_text()
    commands = get_commands()
    used = set(re.findall(r"`((?:zoho_\w+|qcluster)(?: [^`]*)?)`", text))
    assert len(used) >= 8
    for snippet in used:
        name, *args = snippet.split()
        assert name in commands, f"the guide names {name!r}, which is not a command"
        parser = load_command_class(commands[name], name).create_parser("manage.py", name)
        known = {option for action in parser._actions for option in action.option_strings}
        for arg in args:
            if arg.startswith("--"):
                assert arg.split("=")[0] in known, f"{name} has no option {arg}"


def test_every_schedule_is_in_the_guide():
    text = GUIDE.read_text()
    for planned in SCHEDULES:
        assert planned.name.split(": ", 1)[1] in text, planned.name
