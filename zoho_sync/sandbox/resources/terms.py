"""Billing-period arithmetic for subscriptions: interval steps from an anchor date, without month drift.

Term k starts at anchor + k*interval (computed from the anchor each time, so 31 Jan -> 28 Feb -> 31 Mar);
a term ends the day before the next one starts, which is also `next_billing_at` (§3.6).
"""

from __future__ import annotations

import calendar
from datetime import date, timedelta


def shift(anchor: date, count: int, unit: str) -> date:
    """`anchor` moved by `count` units of days, weeks, months or years (day clamped to the month's end)."""
    if unit == "days":
        return anchor + timedelta(days=count)
    if unit == "weeks":
        return anchor + timedelta(weeks=count)
    months = count * (12 if unit == "years" else 1)
    years, month0 = divmod(anchor.month - 1 + months, 12)
    year, month = anchor.year + years, month0 + 1
    return date(year, month, min(anchor.day, calendar.monthrange(year, month)[1]))


def current_term(anchor: date, today: date, interval: int, unit: str) -> tuple[int, date, date]:
    """(index, start, next start) of the term that contains `today`, for terms starting at `anchor`."""
    index = 0
    while shift(anchor, (index + 1) * interval, unit) <= today:
        index += 1
    return index, shift(anchor, index * interval, unit), shift(anchor, (index + 1) * interval, unit)


def term(anchor: date, index: int, interval: int, unit: str) -> tuple[date, date]:
    """(first day, last day) of term `index`."""
    start = shift(anchor, index * interval, unit)
    return start, shift(anchor, (index + 1) * interval, unit) - timedelta(days=1)
