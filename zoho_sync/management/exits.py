"""Expected non-zero exits of the management commands, said as a plain sentence.

Django prints a CommandError as "CommandError: <message>", which reads as a crash. An exit that is an answer (2:
something is left to do; the health check's 1: unhealthy) is not one. `Unfinished` is the exception for it:
still a CommandError carrying its exit code (callers from code and `call_command` see what they always saw), and
on the command line Django writes it as it writes its own system-check report: the sentence alone, then exits
with the code. Errors (bad options, a crash) stay plain CommandErrors."""

from __future__ import annotations

from django.core.management.base import BaseCommand, SystemCheckError

LEFT_TO_DO = 2  # the documented "something is left to do" of every command


class Unfinished(SystemCheckError):
    """An expected non-zero exit, printed without a prefix (BaseCommand.run_from_argv writes a SystemCheckError's
    text as it is)."""

    def __init__(self, message: str, returncode: int = LEFT_TO_DO):
        super().__init__(message, returncode=returncode)


def exit_with(command: BaseCommand, message: str, code: int = LEFT_TO_DO) -> None:
    """Leave `command` with the expected exit `code`, saying `message` plainly (never returns)."""
    raise Unfinished(message, returncode=code)
