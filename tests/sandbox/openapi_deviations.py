"""Every known difference between Zoho's OpenAPI documents and the sandbox, in one table with a reason per row.

The validator in tests/openapi_support.py applies these rows and nothing else (zoho-billing-api.md §8 lists
the documents' defects). Add a row only with a reason; a row with no test needing it should be removed.
"""

from __future__ import annotations

from tests.openapi_support import Deviation

LISTS = ("GET /customers", "GET /products", "GET /plans", "GET /subscriptions", "GET /invoices", "GET /events")
SUBSCRIPTION_DETAIL = ("POST /subscriptions", "GET /subscriptions/{subscription_id}",
                       "PUT /subscriptions/{subscription_id}", "POST /subscriptions/{subscription_id}/cancel")
INVOICE_DETAIL = ("POST /invoices", "GET /invoices/{invoice_id}", "PUT /invoices/{invoice_id}")
PAYMENT_DETAIL = ("POST /payments", "GET /payments/{payment_id}")
CREDIT_NOTE_DETAIL = ("POST /creditnotes", "GET /creditnotes/{creditnote_id}")
REFUND_DETAIL = ("POST /creditnotes/{creditnote_id}/refunds", "POST /payments/{payment_id}/refunds",
                 "GET /creditnotes/refunds/{refund_id}")
REFUND_REQUESTS = REFUND_DETAIL[:2]
ENVELOPE = {"code": {"type": "integer"}, "message": {"type": "string"}}
PAGE_CONTEXT = {"type": "object", "required": ["page", "per_page", "has_more_page"],
                "properties": {"page": {"type": "integer"}, "per_page": {"type": "integer"},
                               "has_more_page": {"type": "boolean"}}}

DEVIATIONS: tuple[Deviation, ...] = (
    # -- validator policies ------------------------------------------------------------------------------
    Deviation(("*",), "policy", name="strict_objects",
              reason="The documents never set additionalProperties, so any invented field would pass; closing "
                     "every object that lists properties makes each field the sandbox adds visible (and listed "
                     "below)."),
    Deviation(("*",), "policy", name="require_envelope",
              reason="Response schemas have no `required` lists at all; Zoho's envelope always carries `code`, "
                     "`message` and the resource key (§4), so every top-level property is required."),
    Deviation(("*",), "policy", name="error_envelope",
              reason="The documents declare no error responses; errors are checked against {code (non-zero), "
                     "message} and nothing else (§5.2), built from the operation's own code/message schemas."),
    Deviation(("*",), "policy", name="ignore_request_required", target="request",
              reason="Request `required` lists are wrong (e.g. tax_authority_id on customers; customer and "
                     "customer_id both required on subscriptions, §3), so request checks ignore them."),
    Deviation(("*",), "policy", name="strict_request_objects", target="request",
              reason="Request objects are closed too, so a misspelt field in a request body fails the check "
                     "instead of being silently ignored by Zoho."),
    # -- routes the documents lack (§8, §12.7) --------------------------------------------------------------
    Deviation(("GET /payments",), "add_route",
              reason="GET /payments (list) exists (§3.8, §12.7) but is absent from payments.yml; its items use "
                     "the documented payment object.",
              schema={"type": "object", "properties": {
                  **ENVELOPE, "page_context": PAGE_CONTEXT,
                  "payments": {"type": "array", "items": {"$op": "POST /payments 201", "$at": "payment"}}}}),
    Deviation(("GET /organizations",), "add_route",
              reason="GET /organizations (§1.2, §12.7) is in no document; items carry organization_id and name.",
              schema={"type": "object", "properties": {
                  **ENVELOPE, "organizations": {"type": "array", "items": {"type": "object", "properties": {
                      "organization_id": {"type": "string"}, "name": {"type": "string"},
                      "currency_code": {"type": "string"}, "currency_symbol": {"type": "string"},
                      "time_zone": {"type": "string"}, "is_default_org": {"type": "boolean"}}}}}}),
    Deviation(("GET /creditnotes",), "add_route",
              reason="GET /creditnotes (list) is absent from credit-notes.yml (§3.9, §8: \"probably exists\"); the "
                     "sandbox serves it like GET /payments so a client can find a credit note by creditnote_number; "
                     "items use the documented credit note object.",
              schema={"type": "object", "properties": {
                  **ENVELOPE, "page_context": PAGE_CONTEXT,
                  "creditnotes": {"type": "array", "items": {"$op": "POST /creditnotes 201", "$at": "credit_note"}}}}),
    Deviation(("GET /creditnotes/refunds",), "add_route",
              reason="No document lists refunds; the sandbox serves GET /creditnotes/refunds (filters customer_id, "
                     "creditnote_id, payment_id) so a client can find a refund it made; items use the documented "
                     "refund object of GET /creditnotes/refunds/{refund_id}.",
              schema={"type": "object", "properties": {
                  **ENVELOPE, "page_context": PAGE_CONTEXT,
                  "refunds": {"type": "array", "items": {"$op": "GET /creditnotes/refunds/{refund_id} 200",
                                                         "$at": "refund"}}}}),
    # -- pagination (§4, §8) ---------------------------------------------------------------------------------
    Deviation(LISTS, "add_property", name="page_context", schema=PAGE_CONTEXT,
              reason="List responses carry page_context {page, per_page, has_more_page} (§4, [C] pagination "
                     "page); the documents' list schemas omit it."),
    # -- one object, inconsistent schemas: use the create response's object everywhere ----------------------
    Deviation(("GET /invoices/{invoice_id}",), "replace", location="invoice",
              schema={"$op": "POST /invoices 201", "$at": "invoice"},
              reason="retrieve-an-invoice copies the list item's `number`/`invoice_date`; the detail uses "
                     "`invoice_number`/`date` as create/update and §3.7 do (list items keep `number`)."),
    Deviation(("GET /customers/{customer_id}", "PUT /customers/{customer_id}"), "replace", location="customer",
              schema={"$op": "POST /customers 201", "$at": "customer"},
              reason="retrieve-a-customer lacks payment_terms, update-a-customer types default_templates as an "
                     "array; Zoho returns the same customer object from create, get and update."),
    Deviation(("GET /plans/{plan_code}", "PUT /plans/{plan_code}"), "replace", location="plan",
              schema={"$op": "POST /plans 201", "$at": "plan"},
              reason="retrieve-a-plan and update-a-plan omit addons[] that create-a-plan returns (§3.4 response "
                     "fields); same plan object everywhere."),
    Deviation(SUBSCRIPTION_DETAIL[1:], "replace", location="subscription",
              schema={"$op": "POST /subscriptions 201", "$at": "subscription"},
              reason="The get/update/cancel schemas each drop a few fields of the create schema (get: "
                     "customer.salutation; update: customer.customer_id); one subscription object everywhere."),
    # -- wrongly typed fields --------------------------------------------------------------------------------
    *(Deviation(INVOICE_DETAIL, "retype", location=f"invoice.invoice_items[].{name}", schema={"type": "number"},
                reason=f"invoice_items[].{name} is money/quantity, a JSON number (§3 value formats; the "
                       "documents type price as a string and item_total/quantity as integers)")
      for name in ("price", "item_total", "quantity")),
    *(Deviation(("POST /invoices", "PUT /invoices/{invoice_id}"), "retype", location=f"invoice_items[].{name}",
                schema={"type": "number"}, target="request",
                reason=f"A request's invoice_items[].{name} is money/quantity, a JSON number like everywhere else "
                       "(§3 value formats); the documents type price as a string and quantity as an integer, "
                       "which would forbid a quantity of 1.5 hours")
      for name in ("price", "quantity")),
    Deviation(SUBSCRIPTION_DETAIL, "retype", location="subscription.interval", schema={"type": "integer"},
              reason="subscription `interval` is typed string with example 1; plans type it integer (§3.4) and "
                     "the sandbox returns the plan's integer."),
    Deviation(("GET /subscriptions",), "retype", location="subscriptions[].interval", schema={"type": "integer"},
              reason="Same `interval` typing defect in the list item schema."),
    # -- fields the responses omit but the project relies on --------------------------------------------------
    Deviation(SUBSCRIPTION_DETAIL, "add_property", location="subscription", name="customer_id",
              schema={"type": "string"},
              reason="The detail has customer{customer_id} only; list items carry customer_id at the top "
                     "(§3.6) and the sandbox returns it on both for the client's dedup lookup (§12.6)."),
    Deviation(INVOICE_DETAIL, "add_property", location="invoice.invoice_items[]", name="description",
              schema={"type": "string"},
              reason="`description` is a documented invoice_items[] request field (§3.7), echoed back."),
    Deviation(("POST /products", "GET /products/{product_id}", "PUT /products/{product_id}"), "add_property",
              location="product", name="description", schema={"type": "string"},
              reason="`description` is a documented product create field (§3.3), echoed back."),
    Deviation(("POST /plans", "GET /plans/{plan_code}", "PUT /plans/{plan_code}"), "add_property",
              location="plan", name="description", schema={"type": "string"},
              reason="`description` is a documented plan create field (§3.4), echoed back."),
    Deviation(PAYMENT_DETAIL, "add_property", location="payment", name="description", schema={"type": "string"},
              reason="`description` is a documented payment create field (§3.8), echoed back."),
    *(Deviation(PAYMENT_DETAIL, "add_property", location="payment", name=name, schema={"type": "string"},
                reason=f"payments.yml defines `{name}` (\"Time when the payment ...\") among its components but leaves "
                       "it out of the payment object; the sandbox sends it, because a refund changes a payment and "
                       "the two-way sync's stale-write guard compares modified times.")
      for name in ("created_time", "updated_time")),
    *(Deviation(("PUT /payments/{payment_id}",), "add_property", location="payment", name=name,
                schema={"type": "string"},
                reason=f"The update answer is the same payment object as a create's, `{name}` included (see the "
                       "row above): an update changes the payment's modified time.")
      for name in ("created_time", "updated_time")),
    *(Deviation(("GET /payments",), "add_property", location="payments[]", name=name, schema={"type": "string"},
                reason=f"List items carry `{name}` too, so reconciliation finds changed payments (§12.6, §12.7).")
      for name in ("created_time", "updated_time")),
    # -- credit notes and refunds (§3.9) -----------------------------------------------------------------------
    Deviation(CREDIT_NOTE_DETAIL, "retype", location="credit_note.creditnote_items[].quantity",
              schema={"type": "number"},
              reason="creditnote_items[].quantity is a quantity, a JSON number like invoice lines' (§3 value "
                     "formats); credit-notes.yml types it int32."),
    Deviation(("POST /creditnotes",), "retype", location="creditnote_items[].quantity", schema={"type": "number"},
              target="request",
              reason="A request's creditnote_items[].quantity is a JSON number, as on invoice lines (§3 value "
                     "formats); credit-notes.yml types it int32."),
    Deviation(("POST /creditnotes",), "add_property", name="invoices", target="request",
              schema={"type": "array", "items": {"type": "object", "properties": {
                  "invoice_id": {"type": "string"}, "amount_applied": {"type": "number"}}}},
              reason="The create body has no way to apply the credit note; the sandbox takes invoices[] in the "
                     "shape of POST /creditnotes/{id}/invoices (an extension, credit_notes.py)."),
    Deviation(("POST /creditnotes",), "add_property", name="invoice_id", schema={"type": "string"}, target="request",
              reason="Shorthand of the invoices[] extension: the whole credit note applied to one invoice "
                     "(credit_notes.py)."),
    *(Deviation(REFUND_REQUESTS, "add_property", name=name, schema={"type": "string"}, target="request",
                reason=f"`{name}` is a field of the refund object but not of refunds.yml's request; the sandbox "
                       "accepts it as Zoho Books' refund requests do (refunds.py).")
      for name in ("date", "refund_mode", "reference_number")),
    Deviation(CREDIT_NOTE_DETAIL, "add_property", location="credit_note", name="payment_id",
              schema={"type": "string"},
              reason="Extension: the payment a refund's credit note was made for (\"\" otherwise), so a pull can "
                     "tell a payment refund's credit note from a credit note of its own."),
    Deviation(("GET /creditnotes",), "add_property", location="creditnotes[]", name="payment_id",
              schema={"type": "string"}, reason="List items carry the payment_id extension too (see above)."),
    *(Deviation(REFUND_DETAIL, "add_property", location="refund", name=name, schema={"type": "string"},
                reason=f"The refund object names its credit note only inside `creditnote`; the sandbox also sends "
                       f"`{name}` at the top, so a client matches a refund to its payment or credit note directly.")
      for name in ("creditnote_id", "payment_id")),
    *(Deviation(REFUND_DETAIL, "add_property", location="refund", name=name, schema={"type": "string"},
                reason=f"refunds.yml has no modified times; the sandbox sends `{name}` as on every other resource, "
                       "for the pull's modified-time comparison.")
      for name in ("created_time", "updated_time")),
    *(Deviation(("GET /creditnotes/refunds",), "add_property", location="refunds[]", name=name,
                schema={"type": "string"}, reason=f"List items are the refund object, `{name}` included (see above).")
      for name in ("creditnote_id", "payment_id", "created_time", "updated_time")),
)
