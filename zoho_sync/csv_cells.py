"""Cells of the CSV files the product writes, made safe to open in a spreadsheet (OWASP's "CSV injection").

A cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage return is read by Excel, LibreOffice and Google
Sheets as a formula (`=HYPERLINK(...)`, `+cmd|' /C calc'!A0`); such a cell is written with a single quote in front,
which they show as text. A number stays a number: -12.50, or +1 555 0100, is made of digits, spaces and
`. , ( ) / -` only, where no function, cell reference or command can hide, and is written as it is.
"""

from __future__ import annotations

import csv
import re

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?[0-9.,() /-]*[0-9][0-9.,() /-]*")


def csv_cell(value: object) -> str:
    """The text of one cell: `value` as text, a leading quote added when a spreadsheet would read a formula."""
    text = "" if value is None else str(value)
    if text.startswith(FORMULA_STARTS) and not _NUMBER.fullmatch(text):
        return "'" + text
    return text


class SafeWriter:
    """csv.writer whose every cell goes through csv_cell()."""

    def __init__(self, out, **options):
        self._writer = csv.writer(out, **options)

    def writerow(self, row) -> None:
        self._writer.writerow([csv_cell(value) for value in row])

    def writerows(self, rows) -> None:
        for row in rows:
            self.writerow(row)
