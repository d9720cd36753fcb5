"""Customers: the business's customers, Zoho's customers (`/customers`).

Everything that is particular to this entity lives here: its payload, its remote calls, the fields Zoho
owns and how they are pulled, and its spec (SPEC), which the generic code reads through the registry.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from zoho_sync.client import codes
from zoho_sync.entities.base import EntitySpec, LinkRule, excluded, squash
from zoho_sync.entities.reconciling import OURS, Field, Reconcile, text
from zoho_sync.models import Customer
from zoho_sync.tabular.columns import Column, Ref
from zoho_sync.tabular.entity import ImportEntity
from zoho_sync.validation import email_problem
from zoho_sync.wire.errors import InvalidLocalData, RemoteConflict
from zoho_sync.wire.payloads import drop_empty
from zoho_sync.wire.remote import SyncContext


# --- customer -----------------------------------------------------------------------------------------------
def customer_display_name(customer) -> str:
    """Unique by construction (§12.3): the name people read plus the account number."""
    return f"{customer.name} ({customer.account_number})"


def account_number_of(display_name: str) -> str:
    """The account number in a display name we made ("Ava Smith (CT-2025-00002)" -> "ct-2025-00002"): the part
    that never changes when the person's name does, so it is the customer's natural key (casefolded)."""
    head, _, tail = str(display_name or "").rstrip().rpartition("(")
    return tail[:-1].strip().casefold() if head and tail.endswith(")") else ""


def customer_problems(customer) -> list[str]:
    problems = []
    if not customer.name:
        problems.append("The customer has no first name, last name or company name; Zoho needs a display name.")
    if problem := email_problem(customer.email):
        problems.append(problem)
    return problems


def customer_to_zoho(customer, *, today: date | None = None) -> dict[str, Any]:
    if problems := customer_problems(customer):
        raise InvalidLocalData(" ".join(problems))
    address = drop_empty({
        "street": customer.billing_street, "city": customer.billing_city, "state": customer.billing_state,
        "zip": customer.billing_postal_code, "country": customer.billing_country,
    })
    return drop_empty({
        "display_name": customer_display_name(customer),
        "first_name": customer.first_name,
        "last_name": customer.last_name,
        "company_name": customer.company_name,
        "email": customer.email,
        "phone": customer.phone,
        "currency_code": customer.currency_code,
        "billing_address": address,
    })


# --- customers ----------------------------------------------------------------------------------------------
def customer_create(ctx: SyncContext, customer, payload: dict) -> dict:
    return ctx.client.post("/customers", json=payload)["customer"]


# Fields Zoho keeps as they are when an update leaves them out: sent empty, so a value cleared here is cleared there.
CUSTOMER_CLEARABLE = ("first_name", "last_name", "company_name", "phone")


def customer_update(ctx: SyncContext, customer, payload: dict) -> str:
    ctx.sent = {**dict.fromkeys(CUSTOMER_CLEARABLE, ""), **payload}
    ctx.client.put(f"/customers/{customer.zoho_id}", json=ctx.sent)
    return "update"


def customer_find(ctx: SyncContext, customer) -> dict | None:
    """By the account number in the display name, which survives renames and new emails: first among the
    customers with today's email (the filter third parties confirm, §12.6), then by search (should Zoho ignore
    `search_text`, the list is read whole and matched here, as §12.6 advises)."""
    account = customer.account_number.casefold()
    lookups = ([{"email": customer.email}] if customer.email else []) + [{"search_text": customer.account_number}]
    for params in lookups:
        records = [r for r in ctx.client.paginate("/customers", "customers", params=params)
                   if account_number_of(r.get("display_name", "")) == account]
        if len(records) > 1:
            raise RemoteConflict(f"Zoho holds {len(records)} customers with account number "
                                 f"{customer.account_number}; link the right one by hand.")
        if records:
            return records[0]
    return None


def _customer_skip(customer) -> str | None:
    return excluded(customer)


def _customer_skip(customer) -> str | None:
    return excluded(customer)


# --- zoho_import: the columns of its file -------------------------------------------------------------
CUSTOMER_REF = Ref(Customer, "account_number", "customer with account number", only=("id", "account_number"))


def customer_column(**kwargs) -> Column:
    return Column("customer_account_number", "customer", "ref", "CT-2025-00001", required=True,
                  help="the customer's account number", ref=CUSTOMER_REF, **kwargs)


CUSTOMERS = ImportEntity(
    name="customers", noun="customer", model=Customer, key="account_number",
    columns=(
        Column("account_number", "account_number", "text", "CT-2025-00001", required=True,
               help="the natural key: capital letters, digits and dashes"),
        Column("email", "email", "text", "ava@example.com"),
        Column("first_name", "first_name", "text", "Ava"),
        Column("last_name", "last_name", "text", "Lovelace"),
        Column("company_name", "company_name", "text", "",
               help="a customer needs a first name, a last name or a company name"),
        Column("phone", "phone", "text", "+1 555 0100"),
        Column("account_type", "account_type", "choice", "individual"),
        Column("status", "status", "choice", "active"),
        Column("billing_street", "billing_street", "text", "1 Main Street"),
        Column("billing_city", "billing_city", "text", "Springfield"),
        Column("billing_state", "billing_state", "text", "IL"),
        Column("billing_postal_code", "billing_postal_code", "text", "62701"),
        Column("billing_country", "billing_country", "text", "US"),
        Column("currency_code", "currency_code", "text", "USD", help="ISO 4217"),
    ),
)


# --- zoho_backfill --link-only: the keys a Zoho customer may carry ------------------------------------
# A word of a display name that may be an account number (validation.validate_account_number, any case).
_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{2,31}")


def customer_keys(record: dict) -> set[str]:
    """Every account number a Zoho customer's display name may carry: ours in parentheses at the end (spaces
    inside ignored), or a word with a digit anywhere in a name typed by hand ("CT-2025-00001 ACME corp")."""
    name = str(record.get("display_name") or "")
    keys = {squash(account_number_of(name))}
    keys |= {word.casefold() for word in _TOKEN.findall(name) if any(c.isdigit() for c in word)}
    return keys - {""}


def customer_named_key(record: dict) -> str:
    """The account number a display name carries in our own form ("Name (CT-2025-00001)"), or ""."""
    key = squash(account_number_of(record.get("display_name", "")))
    return key if _TOKEN.fullmatch(key) and any(c.isdigit() for c in key) else ""


SPEC = EntitySpec(
    name="customer", order=10, model=Customer, zoho_entity="customer", id_field="customer_id",
    list_path="/customers", list_key="customers",
    remote_key=lambda r: account_number_of(r.get("display_name", "")),
    local_key=lambda c: c.account_number.casefold(),
    remote_name=lambda r: r.get("display_name"),
    to_zoho=customer_to_zoho, fingerprint=customer_to_zoho,
    create=customer_create, update=customer_update, find=customer_find,
    skip_reason=_customer_skip, label=lambda c: c.account_number, duplicate_codes=(codes.DUPLICATE_CUSTOMER.name,),
    failure_label="account_number", web_app_path="customers", api_resources=("customers",),
    reconcile=Reconcile(fields=(
        Field("display_name", customer_display_name, "display_name", OURS),
        Field("email", lambda c: c.email, "email", OURS, norm=lambda v: text(v).casefold()),
        Field("company_name", lambda c: c.company_name, "company_name", OURS),
        Field("phone", lambda c: c.phone, "phone", OURS),
        Field("currency_code", lambda c: c.currency_code, "currency_code", OURS),
    )),
    importing=CUSTOMERS,
    link=LinkRule(remote_keys=customer_keys, remote_email=lambda r: squash(r.get("email")),
                  local_email=lambda c: squash(c.email), named_key=customer_named_key),
)
