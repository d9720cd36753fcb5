"""Zoho Billing error codes as named data, shared by the client and the sandbox (zoho-billing-api.md §12.3).

Code branches on the names, never on the numbers. Numbers from 900001 up are placeholders for codes Zoho does
not document; when a live check shows the real value, change the number here and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ZohoCode:
    name: str
    http_status: int
    code: int
    message: str


SUCCESS = 0

RATE_LIMIT_PER_MINUTE = ZohoCode(
    "RATE_LIMIT_PER_MINUTE", 429, 44,
    "You have made too many requests in a minute. Your organization is blocked for some time.",
)
RATE_LIMIT_DAILY = ZohoCode(
    "RATE_LIMIT_DAILY", 429, 45,
    "You have crossed your maximum API call limit of {limit} per day for your organization.",
)
TOO_MANY_CONCURRENT = ZohoCode(
    "TOO_MANY_CONCURRENT", 429, 1070, "There are too many requests in process. Please try again after some time."
)
NOT_AUTHORIZED = ZohoCode("NOT_AUTHORIZED", 401, 57, "You are not authorized to perform this operation")
INVALID_VALUE = ZohoCode("INVALID_VALUE", 400, 2, "Invalid value passed for {field}")
INVALID_URL = ZohoCode("INVALID_URL", 404, 5, "Invalid URL Passed")
METHOD_NOT_ALLOWED = ZohoCode(
    "METHOD_NOT_ALLOWED", 405, 37, "The HTTP method is not allowed for the requested resource"
)
DOES_NOT_EXIST = ZohoCode("DOES_NOT_EXIST", 404, 1002, "{resource} does not exist.")
INTERNAL_ERROR = ZohoCode("INTERNAL_ERROR", 500, 1000, "Internal error")
# Placeholders: Zoho documents no code for these cases (zoho-billing-api.md §11.3).
DUPLICATE_CUSTOMER = ZohoCode("DUPLICATE_CUSTOMER", 400, 900001, "The customer \"{name}\" already exists.")
DUPLICATE_PLAN_CODE = ZohoCode("DUPLICATE_PLAN_CODE", 400, 900002, "The plan code \"{code}\" already exists.")
DUPLICATE_ADDON_CODE = ZohoCode("DUPLICATE_ADDON_CODE", 400, 900003, "The addon code \"{code}\" already exists.")
DUPLICATE_INVOICE_NUMBER = ZohoCode(
    "DUPLICATE_INVOICE_NUMBER", 400, 900004, "Invoice number \"{number}\" has already been created."
)
INVALID_PLAN_CODE = ZohoCode("INVALID_PLAN_CODE", 400, 900005, "The plan code \"{code}\" is invalid.")
PAYMENT_OVER_APPLIED = ZohoCode(
    "PAYMENT_OVER_APPLIED", 400, 900006, "The amount applied to invoices exceeds the payment amount or invoice balance."
)
# Placeholder (sandbox): a documented rule refuses the action, e.g. marking inactive a customer with a live
# subscription (§3.1), voiding a void invoice, paying a void invoice, cancelling a cancelled subscription.
ACTION_NOT_ALLOWED = ZohoCode("ACTION_NOT_ALLOWED", 400, 900007, "This action is not allowed: {reason}")
# Placeholders for credit notes (§3.9): Zoho documents no code for a duplicate number or an over-application.
DUPLICATE_CREDITNOTE_NUMBER = ZohoCode(
    "DUPLICATE_CREDITNOTE_NUMBER", 400, 900008, "Credit note number \"{number}\" has already been created."
)
CREDIT_OVER_APPLIED = ZohoCode(
    "CREDIT_OVER_APPLIED", 400, 900009,
    "The amount applied to invoices exceeds the credit note's balance or the invoice balance.",
)

ALL_CODES: tuple[ZohoCode, ...] = (
    RATE_LIMIT_PER_MINUTE, RATE_LIMIT_DAILY, TOO_MANY_CONCURRENT, NOT_AUTHORIZED, INVALID_VALUE, INVALID_URL,
    METHOD_NOT_ALLOWED, DOES_NOT_EXIST, INTERNAL_ERROR, DUPLICATE_CUSTOMER, DUPLICATE_PLAN_CODE,
    DUPLICATE_ADDON_CODE, DUPLICATE_INVOICE_NUMBER, INVALID_PLAN_CODE, PAYMENT_OVER_APPLIED,
    ACTION_NOT_ALLOWED, DUPLICATE_CREDITNOTE_NUMBER, CREDIT_OVER_APPLIED,
)
BY_NUMBER: dict[int, ZohoCode] = {c.code: c for c in ALL_CODES}


def name_for(code: int | None) -> str | None:
    """Return the name of a Zoho code number, or None when the number is not in the table."""
    entry = BY_NUMBER.get(code) if code is not None else None
    return entry.name if entry else None
