"""Import a business's existing records from a CSV file into the mirror models, or write a file's template."""

from __future__ import annotations

import argparse
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, OutputWrapper

from zoho_sync import entities, importing
from zoho_sync.importing.columns import short
from zoho_sync.importing.importer import BATCH, CHANGED, CREATED, REFUSED, UNCHANGED
from zoho_sync.management.commands._sync_output import ProgressPrinter
from zoho_sync.management.exits import Unfinished
from zoho_sync.sync.backfill import Progress

EPILOG = """Files are UTF-8 CSV (a byte-order mark is fine) with a header row naming the columns, in any order; only
the required columns must be there. Each record is found again by its natural key and updated, or created: running
the same file again changes nothing. An empty cell clears an optional field, or sets the default it names.
References name other records by their natural keys (customer by account number, package by plan code, service by
reference, invoice by number); import customers and packages first, then services, invoices, payments.
Numbers and dates use the digits 0-9 (no 1e3); a cell holds at most 10,000 characters and no NUL; text that
starts with =, @, + or - (other than a number or phone number) is refused as formula injection.

Rows are checked as the admin checks them (the same messages), all or nothing: one refused row and nothing is
written (exit 2). --skip-invalid writes the valid rows and leaves the refused ones out (still exit 2). --dry-run
reports exactly what a run would do and writes nothing. Exit 0: every row imported or unchanged; 1: bad
arguments or an unreadable file; 2: rows or the file refused.

New and changed records are pending, as after a save in the admin, but no push is queued per record: run
`manage.py zoho_backfill`, or let the 15-minute "zoho: push pending" schedule of a running qcluster send them.

Columns:
"""


def backfill_name(entity: importing.ImportEntity) -> str:
    spec = entities.for_model(entity.model)
    return next(name for name, s in entities.ENTITY_CHOICES.items() if s is spec)  # the same name: one vocabulary


class Command(BaseCommand):
    help = ("Import customers, service packages, customer services, invoices or payments from a CSV file "
            "(upsert by natural key, all or nothing), or write a file's --template.")

    def create_parser(self, prog_name, subcommand, **kwargs):
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        parser.formatter_class = argparse.RawDescriptionHelpFormatter
        parser.epilog = EPILOG + "\n\n".join(importing.describe(e) for e in importing.ENTITIES.values())
        return parser

    def add_arguments(self, parser):
        parser.add_argument("file", nargs="?", help="The CSV file to import (with --template: where to write it; "
                                                    "stdout without it, or with -).")
        parser.add_argument("--entity", **entities.entity_argument(with_all=False, required=True,
                                                                 what="The records the file holds"))
        parser.add_argument("--dry-run", action="store_true", help="Check and report every row; write nothing.")
        parser.add_argument("--skip-invalid", action="store_true",
                            help="Import the valid rows and leave the refused ones out (default: all or nothing).")
        parser.add_argument("--template", action="store_true",
                            help="Write the entity's CSV template (header and an example row) instead.")

    def handle(self, *args, file, entity, dry_run, skip_invalid, template, verbosity, **options):
        entity = importing.entity_named(entity)
        if template:
            self.write_template(entity, file)
            return
        if not file:
            raise CommandError("Give the CSV file to import (or --template to write one).", returncode=1)
        path = Path(file)
        if not path.is_file():
            raise CommandError(f"{file}: no such file.", returncode=1)
        progress = None
        if verbosity >= 1 and self.stderr.isatty():
            progress = self.progress(entity, path)
        if dry_run:
            self.stdout.write("Dry run: every row is checked and reported as a real run would; nothing is written.")
        try:
            with path.open(encoding="utf-8-sig", newline="") as lines:
                report = importing.import_rows(entity=entity, lines=lines, dry_run=dry_run, skip_invalid=skip_invalid,
                                               on_row=lambda r: self.row(entity, r, verbosity), on_batch=progress)
        except importing.FileRefused as exc:
            for problem in exc.problems:
                self.stdout.write(problem)
            raise Unfinished(f"{file}: the file was refused; nothing was written.") from None
        except UnicodeDecodeError as exc:
            raise CommandError(f"{file} is not UTF-8 text (byte {exc.start} of a read block): save it as CSV UTF-8; "
                               "nothing was written.", returncode=1) from None
        self.finish(entity, report)

    def write_template(self, entity, file) -> None:
        text = importing.template(entity)
        if file and file != "-":
            Path(file).write_text(text, encoding="utf-8")
            self.stdout.write(f"Wrote the {entity.name} template to {file}.")
        else:
            self.stdout.write(text, ending="")

    def progress(self, entity, path: Path):
        with path.open("rb") as f:
            due = max(0, sum(1 for _ in f) - 1)
        printer = ProgressPrinter(OutputWrapper(self.stderr._out))  # on stderr, without its error colour

        def show(report: importing.ImportReport) -> None:
            rate = report.rows / report.seconds if report.seconds else 0.0
            eta = (due - report.rows) / rate if rate else None
            printer(Progress(entity=entity.name, done=min(report.rows, due), due=due, failed=report.counts[REFUSED],
                             rate=rate, eta_seconds=eta, batch_size=BATCH))

        return show

    def row(self, entity, result: importing.RowResult, verbosity: int) -> None:
        key = (result.key if len(result.key) <= 64 else short(result.key, 64)) if result.key else "(no key)"
        if result.outcome == REFUSED:
            self.stdout.write(f"{result.label}: refused {entity.noun} {key}:")
            for problem in result.problems:
                self.stdout.write(f"    {problem}")
        elif result.outcome == CHANGED and verbosity >= 1:
            self.stdout.write(f"{result.label}: changed {entity.noun} {key} ({', '.join(result.fields)})")
        elif result.outcome == CREATED and verbosity >= 1:
            self.stdout.write(f"{result.label}: created {entity.noun} {key}")
        elif result.outcome == UNCHANGED and verbosity >= 2:
            self.stdout.write(f"{result.label}: unchanged {entity.noun} {key}")

    def finish(self, entity, report: importing.ImportReport) -> None:
        counts, refused = report.counts, report.counts[REFUSED]
        self.stdout.write(f"{entity.name}: {report.rows} row(s) in {report.seconds:.1f} s: "
                          + ", ".join(f"{counts[o]} {o}" for o in importing.OUTCOMES) + ".")
        if report.dry_run:
            self.stdout.write("Dry run: nothing was written.")
            if refused:
                then = ("a real run with --skip-invalid leaves them out" if report.skip_invalid
                        else "a real run writes nothing (all or nothing)")
                raise Unfinished(f"{refused} record(s) refused: {then}.")
            return
        if refused and not report.skip_invalid:
            raise Unfinished(f"Nothing was written: {refused} record(s) refused, and an import is all or nothing. "
                             "Fix them and run it again, or use --skip-invalid to import the others.")
        if report.pending:
            self.stdout.write(f"{report.pending} record(s) are pending for Zoho (no push was queued per record): "
                              f"`manage.py zoho_backfill --entity {backfill_name(entity)}` sends them now, or the "
                              "15-minute \"zoho: push pending\" schedule does while a qcluster runs.")
        else:
            self.stdout.write("Nothing changed: every imported row matches its record.")
        if refused:
            raise Unfinished(f"{refused} refused record(s) were left out (--skip-invalid); the others were "
                             "imported.")
