"""The webhook's door (§7.3, §12.5): what a delivery from Zoho must be before the inbox stores its event.

Checked in this order:
a secret configured (503), a signature header (401), JSON (415: Zoho's event webhooks POST application/json; a
form-encoded body is never accepted, so no other reading of the bytes can be verified), the query string in its
canonical form (401, below), the signature over exactly that query and the raw body (401), then the body parsed
strictly (400). Only the bytes that were verified are parsed.

The view (zoho_sync.views) reads the body and answers the status; storing the event is the inbox's
(zoho_sync.inbox.event_accept).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Iterable, Mapping
from urllib.parse import unquote_plus

from zoho_sync.inbox import MAX_DEPTH, EventRefused, event_identity, payload_problem

JSON_TYPE = "application/json"
_QUERY_KEY = re.compile(r"[0-9A-Za-z_.-]{1,64}")  # the names ZOHO_WEBHOOK_QUERY_KEYS may hold


class WebhookRefused(Exception):
    """A delivery refused at the door: the HTTP status to answer and why, in a sentence (logged, never stored)."""

    def __init__(self, status: int, why: str):
        super().__init__(why)
        self.status, self.why = status, why


def webhook_query(query_string: str, keys: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    """The query string as received, as the (name, value) pairs the signature covers; WebhookRefused(401) for a
    query string no genuine delivery has.

    Zoho's string to sign (§7.3) concatenates the pairs sorted by name with no separators, so different query
    strings can sign the same (`?a=bc` and `?ab=c` are both "abc"; a repeated name collapses). The canonical form
    here keeps it verifiable and unambiguous: every `&`-separated field must be `name=value` (percent- and
    `+`-decoded as strict UTF-8, nothing dropped or replaced); each name appears once; the names are exactly those
    of ZOHO_WEBHOOK_QUERY_KEYS (none by default: the webhook URL in Zoho carries no query parameters); no value
    holds `{` (so the query's part of the signed string can never run into the body, which starts with `{`); and
    the concatenation splits into those names one way only (a value holding a later name is refused).
    """
    pairs: list[tuple[str, str]] = []
    for field in query_string.split("&") if query_string else ():
        name, equals, value = field.partition("=")
        if not equals or not name:
            raise WebhookRefused(401, f"the query string's field {field[:40]!r} is not name=value")
        try:
            pairs.append((unquote_plus(name, errors="strict"), unquote_plus(value, errors="strict")))
        except UnicodeDecodeError:
            raise WebhookRefused(401, f"the query string's field {field[:40]!r} is not UTF-8") from None
    names = [name for name, _ in pairs]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise WebhookRefused(401, f"the query parameter {repeated[0][:40]!r} is repeated")
    unexpected, missing = sorted(set(names) - set(keys)), sorted(set(keys) - set(names))
    if unexpected:
        raise WebhookRefused(401, f"the query parameter {unexpected[0][:40]!r} is not one Zoho is set to send "
                                  f"(ZOHO_WEBHOOK_QUERY_KEYS)")
    if missing:
        raise WebhookRefused(401, f"the query parameter {missing[0]!r} is missing (ZOHO_WEBHOOK_QUERY_KEYS)")
    pairs.sort(key=lambda pair: pair[0])
    if any("{" in value for _, value in pairs):
        raise WebhookRefused(401, "a query parameter's value holds '{'")
    if _readings("".join(name + value for name, value in pairs), [name for name, _ in pairs]) > 1:
        raise WebhookRefused(401, "the query parameters sign ambiguously (a value holds a parameter's name)")
    return pairs


def _readings(text: str, names: list[str]) -> int:
    """In how many ways `text` reads as names[0] value names[1] value ... (values any text); counted up to 2."""
    ways = {0: 1}  # where the next name may start -> in how many ways we got there
    for index, name in enumerate(names):
        found: dict[int, int] = {}
        for start, count in ways.items():
            starts = [start] if index == 0 else [i for i in range(start, len(text)) if text.startswith(name, i)]
            for at in starts:
                if text.startswith(name, at):
                    found[at + len(name)] = min(2, found.get(at + len(name), 0) + count)
        ways = found
    return min(2, sum(ways.values())) if names else 1


def webhook_signature(secret: str, body: bytes, params: Mapping[str, str] | Iterable[tuple[str, str]]) -> str:
    """HMAC-SHA256 keyed with the secret, lower-case hex, over the query parameters sorted by name (stably) and
    concatenated as name1value1name2value2..., followed by the raw body (§7.3)."""
    pairs = sorted(params.items() if isinstance(params, Mapping) else params, key=lambda pair: pair[0])
    message = "".join(f"{key}{value}" for key, value in pairs).encode() + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def webhook_verify(secret: str, body: bytes, params: Mapping[str, str] | Iterable[tuple[str, str]],
                   signature: str) -> bool:
    expected = webhook_signature(secret, body, params)
    return hmac.compare_digest(expected.encode(), signature.strip().lower().encode("utf-8", "replace"))


def webhook_payload(body: bytes) -> dict:
    """The verified body as an event: one JSON object in strict UTF-8, no repeated keys, no NaN or infinite
    numbers, at most MAX_DEPTH levels deep, no NUL or lone surrogate in any key or text (the database would refuse
    them). WebhookRefused(400) naming what is wrong."""
    if not body.startswith(b"{"):
        raise WebhookRefused(400, "the body is not a JSON object")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise WebhookRefused(400, f"the body is not UTF-8 (byte {error.start})") from None
    try:
        payload = json.loads(text, object_pairs_hook=_json_object, parse_constant=_json_constant)
    except RecursionError:
        raise WebhookRefused(400, f"the body is nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as error:
        raise WebhookRefused(400, f"the body is not JSON: {str(error)[:200]}") from None
    if not isinstance(payload, dict):
        raise WebhookRefused(400, "the body is not a JSON object")
    problem = payload_problem(payload)
    if problem:
        raise WebhookRefused(400, problem)
    return payload


def _json_object(pairs: list[tuple[str, object]]) -> dict:
    result = dict(pairs)
    if len(result) != len(pairs):
        repeated = next(key for key, _ in pairs if sum(1 for other, _ in pairs if other == key) > 1)
        raise ValueError(f"the key {repeated[:40]!r} is repeated in one object")
    return result


def _json_constant(name: str):
    raise ValueError(f"{name} is not a number JSON allows")


def webhook_event(conf, *, query_string: str, content_type: str, content_params: dict, body: bytes,
                  signature: str) -> dict:
    """A delivery's event, once it passed the door (see above); WebhookRefused with the status to answer."""
    if not conf.webhook_secret:
        raise WebhookRefused(503, "webhooks are not configured here (ZOHO_WEBHOOK_SECRET)")
    if not signature:
        raise WebhookRefused(401, "no X-Zoho-Webhook-Signature header")
    charset = str(content_params.get("charset", "utf-8")).lower()
    if content_type != JSON_TYPE or charset not in ("utf-8", "utf8"):
        shown = (content_type or "none") + (f"; charset={charset}" if "charset" in content_params else "")
        raise WebhookRefused(415, f"the body must be {JSON_TYPE} (UTF-8), as Zoho sends it, not {shown[:80]}")
    if any(not _QUERY_KEY.fullmatch(key) for key in conf.webhook_query_keys):
        raise WebhookRefused(503, "ZOHO_WEBHOOK_QUERY_KEYS holds a name that is not letters, digits, '_', '.' or '-'")
    pairs = webhook_query(query_string, conf.webhook_query_keys)
    if not webhook_verify(conf.webhook_secret, body, pairs, signature):
        raise WebhookRefused(401, "the signature does not match")
    payload = webhook_payload(body)
    try:
        event_identity(payload)
    except EventRefused as refused:
        raise WebhookRefused(400, str(refused)) from None
    return payload

