"""Import columns: what one CSV column holds, how its text becomes a value, and the words used when it cannot.

When the admin's form refuses the same text, the message is the admin form field's own, followed by a hint
(the import's format); when the admin would take it (the import is stricter: ISO dates, plain decimals, true or
false), the import's specific message. No queries here: a reference column yields the natural key it names; the
importer resolves keys in bulk.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from django import forms
from django.contrib.admin.options import FORMFIELD_FOR_DBFIELD_DEFAULTS
from django.core.exceptions import ValidationError
from django.core.validators import MaxLengthValidator
from django.db import models
from django.utils import timezone

from zoho_sync import validation

# A cell longer than this is refused before anything else looks at it (and never echoed back). Every column
# with a max_length is shorter; this bounds the text columns without one (descriptions, notes).
MAX_CELL = 10_000
ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")  # 0-9 only: \d is any script's digits
NUMERIC = ("money", "quantity", "integer", "date", "datetime")
TRUE, FALSE = ("true", "yes", "1"), ("false", "no", "0")

FORMATS = {
    "text": "text",
    "choice": "one of the values listed",
    "money": "a plain decimal, at most 2 places (1234.50; no currency sign or thousands separator)",
    "quantity": "a plain decimal greater than zero, at most 2 places",
    "integer": "a whole number",
    "date": "an ISO date, YYYY-MM-DD",
    "datetime": "an ISO date and time, YYYY-MM-DDTHH:MM[:SS][+HH:MM] (no offset: the server's time zone)",
    "boolean": "true or false (yes/no, 1/0)",
    "ref": "the natural key of an existing record",
}


class CellError(Exception):
    """One cell's text cannot become a value: the message names the column and (shortened) the text."""


def short(text: str, limit: int = 40) -> str:
    """The cell's text for a message: quoted, and cut short so a huge cell never floods the report."""
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")


@dataclass(frozen=True)
class Ref:
    """A column naming another record by its natural key (a customer by account number, ...)."""

    model: type[models.Model]
    key: str
    noun: str  # "customer with account number"
    only: tuple[str, ...] = ("id",)  # what the model's clean() reads of it


@dataclass(frozen=True)
class Column:
    name: str
    field: str  # the model field it fills
    kind: str  # a key of FORMATS
    example: str = ""
    required: bool = False
    help: str = ""
    ref: Ref | None = None

    def choices(self, model_field: models.Field) -> list[str]:
        return [str(value) for value, _label in model_field.choices or ()]

    def describe(self, model_field: models.Field) -> str:
        """One line of the column documentation (template, --help, docs)."""
        what = "required" if self.required else "optional"
        fmt = FORMATS[self.kind]
        if self.kind == "choice":
            fmt = "one of " + ", ".join(self.choices(model_field))
        default = "" if self.required else empty_description(model_field)
        return f"{self.name} ({what}; {fmt}{default}){': ' + self.help if self.help else ''}"

    def parse(self, text: str, model_field: models.Field):
        """The value for the model field, or raise CellError. Empty text means the field's empty value or default."""
        if len(text) > MAX_CELL:
            raise CellError(f"{self.name}: the cell is {len(text)} characters long; a cell holds at most {MAX_CELL}.")
        if "\x00" in text:
            raise CellError(f"{self.name}: {validation.NULL_CHARACTERS} The cell holds a NUL character (\\x00) at "
                            f"character {text.index(chr(0)) + 1}; remove it.")
        text = text.strip()
        if not text:
            if self.required:
                raise CellError(f"{self.name}: {forms.Field.default_error_messages['required']} The cell is empty.")
            return empty_value(model_field)
        if self.kind in ("text", "choice", "ref"):
            limit = getattr(model_field, "max_length", None) if self.kind != "ref" else None
            if limit and len(text) > limit:
                raise CellError(f"{self.name}: {first_message(MaxLengthValidator(limit), text)}")
            if self.kind == "choice" and text not in self.choices(model_field):
                words = admin_words(model_field, text) or f"{short(text)} is not a valid choice."
                raise CellError(f"{self.name}: {words} Write one of {', '.join(self.choices(model_field))}.")
            # The import's own check (the admin takes such text): a field's own validator, when it refuses the
            # text too, speaks first with the admin's words (the model check after parsing).
            if self.kind == "text" and (problem := validation.formula_problem(text)) \
                    and not validators_refuse(model_field, text):
                raise CellError(f"{self.name} {short(text)} {problem}")
            return text
        try:
            if self.kind in NUMERIC and validation.foreign_digits(text):
                raise CellError(f"{self.name} {short(text)} has digits other than 0-9: write numbers and dates with "
                                "the digits 0-9.")
            return PARSERS[self.kind](self.name, text)
        except CellError:
            words = admin_words(model_field, text)
            if words is None:  # the admin would take it: the import's own message says why the import does not
                raise
            raise CellError(f"{self.name}: {words} The cell holds {short(text)}; write {FORMATS[self.kind]}.") from None

    def missing(self, key: str) -> str:
        """A reference to no record: the admin's words for a choice that is not there, then which record."""
        return (f"{self.name}: {forms.ModelChoiceField.default_error_messages['invalid_choice']} No {self.ref.noun} "
                f"{short(key)}.")


def first_message(validator, value) -> str:
    try:
        validator(value)
    except ValidationError as exc:
        return exc.messages[0]
    return ""


def validators_refuse(model_field: models.Field, text: str) -> bool:
    try:
        model_field.run_validators(text)
    except ValidationError:
        return True
    return False


def admin_form_field(model_field: models.Field) -> forms.Field:
    """The form field the admin's form has for a (non-relational) model field: Django's admin defaults, as
    ModelAdmin.formfield_for_dbfield picks them (a date-time is a split date and time); our admins add none."""
    for klass in type(model_field).mro():
        if klass in FORMFIELD_FOR_DBFIELD_DEFAULTS:
            return model_field.formfield(**FORMFIELD_FOR_DBFIELD_DEFAULTS[klass])
    return model_field.formfield()


def admin_words(model_field: models.Field, text: str) -> str | None:
    """What the admin's form says of `text` in this field, or None when it takes it (called for refused cells only)."""
    field = admin_form_field(model_field)
    value: object = text
    if isinstance(field, forms.SplitDateTimeField):  # the admin's two boxes: the date, then the time
        date_part, _, time_part = text.replace(" ", "T", 1).partition("T")
        value = [date_part, time_part]
    try:
        field.clean(value)
    except ValidationError as exc:
        return exc.messages[0]
    return None


def empty_value(model_field: models.Field):
    if model_field.has_default():
        return model_field.get_default()
    if model_field.null:
        return None
    return ""


def empty_description(model_field: models.Field) -> str:
    if model_field.has_default():
        default = model_field.get_default()
        if default != "" and default is not None:
            return f"; empty means {str(default).lower() if isinstance(default, bool) else default}"
    return ""


def parse_money(name: str, text: str) -> Decimal:
    # Plain decimals only: "1e3", "1,200.00" or "$12" would otherwise be read as something the file did not mean.
    if not validation.PLAIN_DECIMAL.fullmatch(text):
        raise CellError(f"{name} {short(text)} is not a plain decimal number like 1234.50.")
    try:
        return validation.parse_money(text, field=name)
    except ValidationError as exc:
        raise CellError(exc.messages[0].replace(f"{name} {text!r}", f"{name} {short(text)}")) from None


def parse_quantity(name: str, text: str) -> Decimal:
    return parse_money(name, text)


def parse_integer(name: str, text: str) -> int:
    if not re.fullmatch(r"[+-]?[0-9]{1,18}", text):
        raise CellError(f"{name} {short(text)} is not a whole number.")
    return int(text)


def parse_date(name: str, text: str) -> date:
    try:
        if ISO_DATE.fullmatch(text):
            return date.fromisoformat(text)
    except ValueError:
        pass
    raise CellError(f"{name} {short(text)} is not a date like 2025-01-31 (YYYY-MM-DD).")


def parse_datetime(name: str, text: str) -> datetime:
    try:
        if not ISO_DATE.match(text[:10]):
            raise ValueError
        value = datetime.fromisoformat(text)
    except ValueError:
        raise CellError(f"{name} {short(text)} is not a date and time like 2025-01-31T09:30:00+00:00.") from None
    return value if timezone.is_aware(value) else timezone.make_aware(value)


def parse_boolean(name: str, text: str) -> bool:
    if text.lower() in TRUE:
        return True
    if text.lower() in FALSE:
        return False
    raise CellError(f"{name} {short(text)} is not true or false.")


PARSERS = {"money": parse_money, "quantity": parse_quantity, "integer": parse_integer, "date": parse_date,
           "datetime": parse_datetime, "boolean": parse_boolean}

