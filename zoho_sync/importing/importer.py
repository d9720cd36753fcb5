"""The CSV importer: stream a file, check every row as the admin does, upsert by natural key in one transaction.

Rows are read in batches. A batch resolves its references and loads its existing records with one query per
column, checks each row (the model's field validators and clean(), the admin's invoice-line totals), then writes
with bulk_create / bulk_update. A changed record gets the bookkeeping a person's save writes (pending, version
bumped inside the UPDATE, a worker's claim untouched); no push is queued per record (see `import_rows`).
"""

from __future__ import annotations

import copy
import csv
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from zoho_sync.models import ZohoSyncedModel
from zoho_sync.tabular.columns import MAX_CELL, CellError, short
from zoho_sync.tabular.entity import ImportEntity

BATCH = 2000
CREATED, CHANGED, UNCHANGED, REFUSED = "created", "changed", "unchanged", "refused"
OUTCOMES = (CREATED, CHANGED, UNCHANGED, REFUSED)


class FileRefused(Exception):
    """The file as a whole cannot be imported (its header, its encoding): nothing was read into the database."""

    def __init__(self, problems: list[str]):
        super().__init__(" ".join(problems))
        self.problems = problems


@dataclass
class Record:
    """One record of the file: one row, or for invoices the consecutive rows of one invoice (its lines)."""

    entity: ImportEntity
    first: int
    last: int
    cells: dict[str, str]
    lines: list = field(default_factory=list)  # invoices: (row, {field: value}) per line, parsed
    line_cells: list = field(default_factory=list)  # invoices: (row, cells) per line
    key: str = ""
    values: dict = field(default_factory=dict)
    refs: dict = field(default_factory=dict)  # column name -> natural key text
    bad_fields: set = field(default_factory=set)
    problems: list[str] = field(default_factory=list)
    late_problems: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    obj: object = None
    new_lines: list = field(default_factory=list)
    outcome: str = ""

    @property
    def label(self) -> str:
        return f"row {self.first}" if self.first == self.last else f"rows {self.first}-{self.last}"

    def refuse(self, *messages: str, row: int | None = None) -> None:
        prefix = f"row {row}: " if row is not None and self.first != self.last else ""
        self.problems += [prefix + m for m in messages]

    def messages_of(self, exc: ValidationError, *, lines: bool = False) -> list[str]:
        """A model's ValidationError in the admin's words, each field error prefixed with its column's name."""
        columns = self.entity.line_columns if lines else self.entity.columns
        names = {c.field: c.name for c in columns}
        if not hasattr(exc, "error_dict"):
            return list(exc.messages)
        out = []
        for name, messages in exc.message_dict.items():
            prefix = "" if name == NON_FIELD_ERRORS else f"{names.get(name, name)}: "
            out += [prefix + m for m in messages]
        return out


@dataclass(frozen=True)
class RowResult:
    label: str
    key: str
    outcome: str
    fields: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()


@dataclass
class ImportReport:
    entity: ImportEntity
    dry_run: bool
    skip_invalid: bool
    counts: Counter = field(default_factory=Counter)
    rows: int = 0
    seconds: float = 0.0

    @property
    def committed(self) -> bool:
        """Whether what the report calls created and changed is in the database now."""
        return not self.dry_run and (self.skip_invalid or not self.counts[REFUSED])

    @property
    def pending(self) -> int:
        return self.counts[CREATED] + self.counts[CHANGED] if self.committed else 0


@dataclass(frozen=True)
class Unreadable:
    """A row the csv module could not read (a cell over its field size limit): which cell, and what came before."""

    column: int | None  # the index of the cell over the limit (None: the csv module refused the row otherwise)
    cells: list[str]  # the row's cells (each cut short)
    error: str  # the csv module's words


class CsvRows:
    """The rows of a CSV file as lists of cells; a row the csv module refuses is an `Unreadable` instead of an
    exception, and reading goes on with the next row.

    The csv module stops at a cell longer than `csv.field_size_limit()` (131,072 characters) and forgets the row;
    the lines of the current row are kept to find the cell at fault, and an unfinished quoted cell is read to its
    end, so the rest of it is never taken for rows of its own. The limit stays as it is: it bounds the memory one
    cell can take.
    """

    def __init__(self, lines: Iterable[str]):
        self.raw: list[str] = []
        self.source = self.kept(lines)
        self.reader = csv.reader(self.source)

    def kept(self, lines: Iterable[str]) -> Iterator[str]:
        for line in lines:
            self.raw.append(line)
            yield line

    def __iter__(self) -> Iterator[list[str] | Unreadable]:
        return self

    def __next__(self) -> list[str] | Unreadable:
        self.raw.clear()  # the reader reads no line ahead: what it reads now is this row's
        try:
            return next(self.reader)
        except csv.Error as exc:
            scan = RawRow()
            for line in self.raw:
                scan.feed(line)
            self.raw.clear()
            while scan.quoted:  # the rest of an unfinished quoted cell belongs to this row
                line = next(self.source, None)
                self.raw.clear()
                if line is None:
                    break
                scan.feed(line)
            return Unreadable(scan.fault, scan.cells, str(exc))


class RawRow:
    """Walks a row's raw text as the csv module's default (Excel) dialect reads it: the cells (cut short), the
    first cell longer than the csv module's limit, and whether a quoted cell is still open."""

    KEEP = 200

    def __init__(self):
        self.cells: list[str] = []
        self.cell: list[str] = []
        self.length = 0
        self.quoted = self.after_quote = self.ended = False
        self.fault: int | None = None
        self.limit = csv.field_size_limit()

    def feed(self, text: str) -> None:
        for ch in text:
            if self.ended:
                return
            if self.quoted and not self.after_quote:
                if ch == '"':
                    self.after_quote = True
                else:
                    self.add(ch)
                continue
            if self.after_quote and ch == '"':  # a doubled quote inside a quoted cell
                self.after_quote = False
                self.add(ch)
            elif ch == ",":
                self.end()
            elif ch in "\r\n":
                self.end()
                self.ended = True
            elif ch == '"' and not self.length and not self.quoted:
                self.quoted = True
            else:
                self.quoted = self.after_quote = False
                self.add(ch)

    def add(self, ch: str) -> None:
        self.length += 1
        if self.length <= self.KEEP:
            self.cell.append(ch)
        if self.length > self.limit and self.fault is None:
            self.fault = len(self.cells)

    def end(self) -> None:
        self.cells.append("".join(self.cell))
        self.cell, self.length, self.quoted, self.after_quote = [], 0, False, False


def read_header(entity: ImportEntity, reader: Iterator[list[str] | Unreadable]) -> list[str]:
    """The file's column names, or FileRefused naming every unknown, repeated and missing column."""
    try:
        header = next(reader)
    except StopIteration:
        raise FileRefused(["The file is empty: its first row must name the columns."]) from None
    if isinstance(header, Unreadable):
        why = (f"cell {header.column + 1} is longer than {csv.field_size_limit()} characters"
               if header.column is not None else f"cannot be read ({header.error})")
        raise FileRefused([f"The header row's {why}: the first row must name the columns."])
    names = [h.strip().lower() for h in header]
    known = {c.name for c in entity.all_columns}
    problems = []
    if unknown := [n for n in names if n not in known]:
        problems.append(f"Unknown column(s) {', '.join(map(short, unknown))}: the {entity.name} columns are "
                        f"{', '.join(c.name for c in entity.all_columns)}.")
    if repeated := sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"Column(s) {', '.join(map(short, repeated))} appear more than once in the header.")
    if missing := [n for n in entity.required() if n not in names]:
        problems.append(f"Missing required column(s): {', '.join(missing)}.")
    if problems:
        raise FileRefused(problems)
    return names


def read_records(entity: ImportEntity, reader: Iterable[list[str] | Unreadable],
                 header: list[str]) -> Iterator[Record]:
    """Records in file order. Row numbers count the header as row 1, as a spreadsheet shows them."""
    key_at = header.index(entity.key)
    line_names = {c.name for c in entity.line_columns}
    current: Record | None = None
    for row, cells in enumerate(reader, start=2):
        if not isinstance(cells, Unreadable) and not any(c.strip() for c in cells):
            continue
        if isinstance(cells, Unreadable) or len(cells) != len(header):
            if current:
                yield current
                current = None
            yield unreadable_record(entity, row, header, cells, key_at)
            continue
        named = dict(zip(header, cells, strict=True))
        key = cells[key_at].strip()
        if entity.line_columns and current is not None and key and key == current.key:
            current.last = row
            current.line_cells.append((row, {k: v for k, v in named.items() if k in line_names}))
            check_repeated(current, row, named)
            continue
        if current:
            yield current
        current = Record(entity, row, row, {k: v for k, v in named.items() if k not in line_names}, key=key)
        if entity.line_columns:
            current.line_cells.append((row, {k: v for k, v in named.items() if k in line_names}))
    if current:
        yield current


def unreadable_record(entity: ImportEntity, row: int, header: list[str], cells: list[str] | Unreadable,
                      key_at: int) -> Record:
    """A refused row the file's shape says nothing more of: a row of the wrong width, or a cell the csv module
    could not read (named by its column)."""
    if not isinstance(cells, Unreadable):
        bad = Record(entity, row, row, {})
        bad.refuse(f"The row has {len(cells)} cells; the header has {len(header)}.")
        return bad
    key = cells.cells[key_at].strip() if key_at < len(cells.cells) and key_at != cells.column else ""
    bad = Record(entity, row, row, {}, key=key)
    if cells.column is None:
        bad.refuse(f"The row cannot be read as CSV ({cells.error}).")
        return bad
    name = header[cells.column] if cells.column < len(header) else f"cell {cells.column + 1} (past the header)"
    bad.refuse(f"{name}: the cell is longer than {csv.field_size_limit()} characters; a cell holds at most "
               f"{MAX_CELL}.")
    return bad


def check_repeated(record: Record, row: int, named: dict[str, str]) -> None:
    """An invoice's later rows repeat its columns or leave them empty; a different value is refused."""
    for name, first in record.cells.items():
        text = named[name].strip()
        if text and text != first.strip():
            record.refuse(f"{name} {short(text)} differs from the invoice's first row ({short(first.strip())}).",
                          row=row)


def batches(records: Iterator[Record], size: int) -> Iterator[list[Record]]:
    batch: list[Record] = []
    for record in records:
        batch.append(record)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def parse(record: Record) -> None:
    entity = record.entity
    for name, text in record.cells.items():
        column = entity.column(name)
        try:
            value = column.parse(text, entity.model_field(column))
        except CellError as exc:
            record.refuse(str(exc))
            record.bad_fields.add(column.field)
            continue
        if column.ref:
            record.refs[name] = value
        else:
            record.values[column.field] = value
    for row, cells in record.line_cells:
        values, refs = {}, {}
        for column in entity.line_columns:
            try:
                value = column.parse(cells.get(column.name, ""), entity.model_field(column))
            except CellError as exc:
                record.refuse(str(exc), row=row)
                continue
            (refs if column.ref else values)[column.name if column.ref else column.field] = value
        record.lines.append((row, values, refs))


def resolve(entity: ImportEntity, batch: list[Record]) -> dict[str, dict[str, object]]:
    """Every referenced record of the batch, by column and natural key: one query per reference column."""
    found = {}
    for column in (c for c in entity.all_columns if c.ref):
        keys = {r.refs.get(column.name) for r in batch} | {refs.get(column.name) for r in batch
                                                            for _, _, refs in r.lines}
        keys.discard(None)
        keys.discard("")
        rows = column.ref.model.objects.filter(**{f"{column.ref.key}__in": keys}).only(*column.ref.only)
        found[column.name] = {getattr(row, column.ref.key): row for row in rows} if keys else {}
    return found


def assign_refs(record: Record, found: dict) -> None:
    entity = record.entity
    for name, key in record.refs.items():
        column = entity.column(name)
        target = found[name].get(key) if key else None
        if key and target is None:
            record.refuse(column.missing(key))
            record.bad_fields.add(column.field)
        record.values[column.field] = target
    lines = []
    for row, values, refs in record.lines:
        for name, key in refs.items():
            column = entity.column(name)
            target = found[name].get(key) if key else None
            if key and target is None:
                record.refuse(column.missing(key), row=row)
            values[column.field] = target
        lines.append((row, values))
    record.lines = lines


def check(record: Record, existing: dict, hooks) -> None:
    """Build the record's model instance and decide its outcome, with the model's and the admin's checks."""
    entity = record.entity
    obj = existing.get(record.key) or entity.model()
    record.obj = obj
    present = [c.field for c in entity.columns if c.name in record.cells]  # in the documented column order
    before = {name: getattr(obj, obj._meta.get_field(name).attname) for name in present}
    for name, value in record.values.items():
        if name not in record.bad_fields:
            setattr(obj, name, value)
    # References were resolved for the whole batch: their fields' own check would query once per row.
    exclude = set(ZohoSyncedModel.BOOKKEEPING_FIELDS) | record.bad_fields | {c.field for c in entity.columns if c.ref}
    try:
        obj.clean_fields(exclude=exclude)
    except ValidationError as exc:
        record.refuse(*record.messages_of(exc))
    if record.problems:
        return
    hooks.before_clean(record)
    if record.problems:
        return
    try:
        obj.clean()
    except ValidationError as exc:
        record.refuse(*record.messages_of(exc))
    record.refuse(*(p for p in record.late_problems if p not in " ".join(record.problems)))
    if record.problems:
        return
    if obj.pk is None:
        record.outcome = CREATED
        return
    names = {c.field: c.name for c in entity.columns}
    record.changed[:0] = [names[n] for n in present if getattr(obj, obj._meta.get_field(n).attname) != before[n]]
    record.outcome = CHANGED if record.changed else UNCHANGED


def local_change(obj, now):
    """What a person's save writes for a changed record, as a copy to bulk_update: the business fields, pending,
    a fresh attempt count and the model's own change expressions (version + 1 inside the UPDATE)."""
    row = copy.copy(obj)
    row.mark_pending()
    row.updated_at = now
    for name, expression in obj.local_change_expressions().items():
        setattr(row, name, expression)
    return row


BOOKKEEPING_WRITTEN = ("updated_at", "sync_status", "next_retry_at", "sync_attempts",
                       *ZohoSyncedModel.local_change_expressions())


def write(entity: ImportEntity, records: list[Record], hooks) -> None:
    model = entity.model
    creates = [r for r in records if r.outcome == CREATED]
    changes = [r for r in records if r.outcome == CHANGED]
    names = {c.name: c.field for c in entity.columns}
    with transaction.atomic():
        model.objects.bulk_create([r.obj for r in creates], batch_size=1000)
        fields = {names[c] for r in changes for c in r.changed if c in names}
        now = timezone.now()
        if changes:
            model.objects.bulk_update([local_change(r.obj, now) for r in changes],
                                      [*sorted(fields), *BOOKKEEPING_WRITTEN], batch_size=500)
        hooks.write(creates + changes)


def write_or_explain(entity: ImportEntity, records: list[Record], hooks) -> None:
    """Write the accepted records; if the database refuses the batch (a constraint no model check covers, or a
    concurrent import), find the rows to blame with the model's constraint checks and write the others."""
    accepted = [r for r in records if r.outcome in (CREATED, CHANGED)]
    if not accepted:
        return
    try:
        write(entity, accepted, hooks)
        return
    except IntegrityError as exc:
        error = str(exc).splitlines()[0][:200]
    for record in accepted:
        if record.outcome == CREATED:
            record.obj.pk, record.obj._state.adding = None, True
        try:
            record.obj.validate_constraints()
            record.obj.validate_unique()
        except ValidationError as problem:
            record.refuse(*record.messages_of(problem))
            record.outcome = REFUSED
    accepted = [r for r in accepted if r.outcome != REFUSED]
    try:
        write(entity, accepted, hooks)
    except IntegrityError:
        for record in accepted:
            record.refuse(f"The database refused the batch of rows this row is in ({error}).")
            record.outcome = REFUSED


def import_rows(*, entity: ImportEntity, lines: Iterable[str], dry_run: bool = False, skip_invalid: bool = False,
                on_row: Callable[[RowResult], None] | None = None,
                on_batch: Callable[[ImportReport], None] | None = None) -> ImportReport:
    """Import a CSV file's lines into `entity`'s model; return the report (raise FileRefused for a bad header).

    All or nothing: one transaction, rolled back when any row is refused (unless `skip_invalid`) or on a dry run,
    which so does everything a real run does. Idempotent: a row equal to its record writes nothing. New and
    changed records are left pending without a queued push each (bulk writes send no post_save): a file of
    100,000 rows must not queue 100,000 tasks; the backfill, or the 15-minute "push pending" schedule, sends them.
    """
    started = time.monotonic()
    report = ImportReport(entity=entity, dry_run=dry_run, skip_invalid=skip_invalid)
    reader = CsvRows(lines)
    header = read_header(entity, reader)
    hooks = entity.hooks()
    seen: dict[str, int] = {}
    with transaction.atomic():
        for batch in batches(read_records(entity, reader, header), BATCH):
            for record in batch:
                parse(record)
                if record.key and record.key in seen:
                    lines = " (its lines on consecutive rows)" if entity.line_columns else ""
                    record.refuse(f"{entity.key} {short(record.key)} is also on row {seen[record.key]}: one "
                                  f"{entity.noun} per file{lines}.")
                elif record.key:
                    seen[record.key] = record.first
            found = resolve(entity, batch)
            keys = [r.key for r in batch if r.key and not r.problems]
            existing = {getattr(o, entity.key): o for o in entity.model.objects.filter(**{f"{entity.key}__in": keys})}
            for record in batch:
                assign_refs(record, found)
            hooks.prepare([r for r in batch if not r.problems], existing)
            for record in batch:
                if not record.problems:
                    check(record, existing, hooks)
                if record.problems:
                    record.outcome = REFUSED
                else:
                    hooks.accepted(record)
            write_or_explain(entity, batch, hooks)
            for record in batch:
                report.counts[record.outcome] += 1
                report.rows += record.last - record.first + 1
                if on_row:
                    on_row(RowResult(record.label, record.key, record.outcome, tuple(record.changed),
                                     tuple(record.problems)))
            report.seconds = time.monotonic() - started
            if on_batch:
                on_batch(report)
        if not report.committed:
            transaction.set_rollback(True)
    report.seconds = time.monotonic() - started
    return report
