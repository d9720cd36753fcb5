"""Every CSV the product writes is safe to open in a spreadsheet: a cell a spreadsheet would read as a formula is
written as text (a leading quote); numbers, and text that starts otherwise, are written as they are."""

from __future__ import annotations

import csv
import dataclasses
import io

import pytest
from django.core.management import call_command

from zoho_sync import importing
from zoho_sync.csv_cells import SafeWriter, csv_cell

HOSTILE = ["=HYPERLINK(\"https://e.vl/login\",\"Fix billing now\")", "+SUM(A1:A9)", "-2+3+cmd|' /C calc'!A0",
           "@cmd", "\t=1+1", "\r=1+1", "=1+1", "-", "+", "@", "-1e3", "+1 555 0100 ext. 4", "=-12.50"]
HARMLESS = ["-12.50", "+12.50", "-1,000.00", "+1 555 0100", "+44 (20) 7946-0958", "-(5)", "12.50", "Ava", "a=b",
            "ava@example.com", "", "1 Main Street", "2025-02-01"]


@pytest.mark.parametrize("value", HOSTILE)
def test_a_cell_a_spreadsheet_would_read_as_a_formula_is_written_as_text(value):
    assert csv_cell(value) == "'" + value


@pytest.mark.parametrize("value", HARMLESS)
def test_numbers_and_plain_text_are_written_as_they_are(value):
    assert csv_cell(value) == value


def test_values_of_any_type_become_text():
    from decimal import Decimal

    assert [csv_cell(v) for v in (Decimal("-12.50"), -3, None, 1.5)] == ["-12.50", "-3", "", "1.5"]


def test_the_writer_neutralises_every_cell_and_csv_quoting_still_applies():
    out = io.StringIO()
    writer = SafeWriter(out, lineterminator="\n")
    writer.writerows([["name", "amount"], ['=HYPERLINK("https://e.vl","x"), y', "-12.50"], ["@cmd\nnext", "3"]])
    assert list(csv.reader(io.StringIO(out.getvalue()))) == [
        ["name", "amount"], ['\'=HYPERLINK("https://e.vl","x"), y', "-12.50"], ["'@cmd\nnext", "3"]]


def test_the_import_template_writes_its_cells_through_the_helper(tmp_path):
    customers = importing.entity_named("customers")
    hostile = dataclasses.replace(customers, columns=tuple(
        dataclasses.replace(c, example="=HYPERLINK(\"https://e.vl\",\"Fix\")") if c.name == "first_name" else
        dataclasses.replace(c, example="-12.50") if c.name == "billing_postal_code" else c
        for c in customers.columns))
    [row] = csv.DictReader(io.StringIO(importing.template(hostile)))
    assert row["first_name"] == "'=HYPERLINK(\"https://e.vl\",\"Fix\")" and row["billing_postal_code"] == "-12.50"

    target = tmp_path / "customers.csv"  # the real command's file: a phone number stays as it is
    call_command("zoho_import", "--entity", "customers", "--template", str(target), stdout=io.StringIO())
    [row] = csv.DictReader(target.open())
    assert row["phone"] == "+1 555 0100" and row["email"] == "ava@example.com"
