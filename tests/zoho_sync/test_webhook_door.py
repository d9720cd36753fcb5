"""The webhook's door against forgery and odd input, through the real request stack (Django's test client; gunicorn
for chunked bodies): a captured signed delivery re-sent in another shape never verifies as something else, the
query string signs one way only, every body the strict parser refuses is a 400 with a log line (never a 500, never
half-stored), event ids are kept whole, and an event whose record Zoho does not have changes nothing here."""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import shlex
import subprocess
import sys
import time
from urllib.parse import parse_qsl

import pytest
import requests
from django.db import connection
from django_q.models import OrmQ

from tests.config.test_serving import ROOT, free_port, procfile, production_env
from tests.zoho_sync.test_inbox import SECRET, URL, deliver, event, synced_invoice
from tests.zoho_sync.test_triggers import Cluster
from zoho_sync import inbox
from zoho_sync.models import Payment, ZohoEvent
from zoho_sync.webhooks import webhook_signature

pytestmark = pytest.mark.django_db
FORM = "application/x-www-form-urlencoded"


@pytest.fixture
def secret(settings):
    settings.ZOHO_WEBHOOK_SECRET = SECRET
    return SECRET


def post(client, body: bytes, *, signature: str, content_type: str = "application/json", query: str = ""):
    return client.generic("POST", URL + (f"?{query}" if query else ""), body, content_type=content_type,
                          CONTENT_TYPE=content_type, HTTP_X_ZOHO_WEBHOOK_SIGNATURE=signature)


def rejected(caplog, status: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith(f"Zoho webhook rejected ({status})")]


def payment_event(event_id: str = "5675", payment_id: str = "903000000999999", **payment) -> dict:
    return {"event_id": event_id, "event_type": "payment_thankyou", "event_time": "2026-12-03T08:00:00Z",
            "data": {"payment": {"payment_id": payment_id, "amount": 950.0, "description": "Monthly fee",
                                 "status": "success", **payment}}}


# --- a captured delivery re-sent in another shape ---------------------------------------------------------------
def forgeries(captured: bytes) -> dict[str, bytes]:
    """Bodies whose URL-decoded form fields, concatenated as Zoho's string to sign does, are the captured JSON body:
    the old check verified them with the captured signature and then parsed the body as JSON."""
    return {
        "as sent": captured,
        "one = inserted": captured.replace(b"Monthly fee", b"Monthly= fee"),
        "percent-encoded differently": captured.replace(b"Monthly fee", b"Mont%68ly fee"),
    }


@pytest.mark.parametrize("shape", ["as sent", "one = inserted", "percent-encoded differently"])
@pytest.mark.parametrize("content_type", [FORM, "application/json"])
def test_a_captured_delivery_resent_in_another_shape_never_verifies(client, secret, caplog, shape, content_type):
    captured = json.dumps(payment_event()).encode()
    signature = webhook_signature(SECRET, captured, {})
    forged = forgeries(captured)[shape]
    # The forgery is real: its form fields sign exactly as the captured delivery did.
    assert webhook_signature(SECRET, b"", parse_qsl(forged.decode(), keep_blank_values=True)) == signature
    with caplog.at_level(logging.WARNING, logger="zoho_sync.views"):
        response = post(client, forged, signature=signature, content_type=content_type)
    if content_type == FORM:  # never accepted: Zoho's event webhooks POST JSON
        assert response.status_code == 415 and FORM in response.json()["error"]
        assert rejected(caplog, 415)
    elif shape == "as sent":  # the genuine delivery itself
        assert (response.status_code, response.json()["status"]) == (200, "accepted")
    else:  # the bytes differ from those signed
        assert (response.status_code, response.json()) == (401, {"error": "the signature does not match"})
    stored = list(ZohoEvent.objects.values_list("payload", flat=True))
    assert stored == ([payment_event()] if (content_type, shape) == ("application/json", "as sent") else [])
    assert not Payment.objects.exists()


@pytest.mark.parametrize(("content_type", "status"), [
    ("application/json; charset=utf-8", 200), ("application/json;charset=UTF-8", 200),
    ("application/json; charset=latin-1", 415), ("text/plain", 415), ("multipart/form-data; boundary=x", 415),
    ("", 415),
])
def test_only_json_is_accepted(client, secret, content_type, status):
    body = json.dumps(event()).encode()
    response = post(client, body, signature=webhook_signature(SECRET, body, {}), content_type=content_type)
    assert response.status_code == status
    assert ZohoEvent.objects.count() == (status == 200)


# --- the query string signs one way only ------------------------------------------------------------------------
def signed_with_query(client, query: str, event_id: str = "ev-q", signed_as: str | None = None):
    body = json.dumps(event(event_id)).encode()
    pairs = parse_qsl(signed_as if signed_as is not None else query, keep_blank_values=True)
    return post(client, body, signature=webhook_signature(SECRET, body, pairs), query=query)


def test_a_query_string_that_signs_like_another_is_refused(client, secret, settings, caplog):
    settings.ZOHO_WEBHOOK_QUERY_KEYS = ["a"]
    assert signed_with_query(client, "a=bc").status_code == 200
    # ?ab=c signs as ?a=bc does ("abc"): the captured signature with the other query string.
    with caplog.at_level(logging.WARNING, logger="zoho_sync.views"):
        twin = signed_with_query(client, "ab=c", event_id="ev-twin")
    assert twin.status_code == 401 and "'ab' is not one Zoho is set to send" in twin.json()["error"]
    assert rejected(caplog, 401)
    settings.ZOHO_WEBHOOK_QUERY_KEYS = ["a", "ab"]  # both names expected: both must come, each once
    assert signed_with_query(client, "a=bc", event_id="ev-a").status_code == 401
    assert signed_with_query(client, "ab=c", event_id="ev-ab").status_code == 401
    assert signed_with_query(client, "a=x&ab=y", event_id="ev-both").status_code == 200
    # "axababy" reads as a=xab&ab=y and as a=x&ab=aby: neither is accepted.
    for query in ("a=xab&ab=y", "a=x&ab=aby"):
        response = signed_with_query(client, query, event_id=f"ev-{query}")
        assert response.status_code == 401 and "ambiguously" in response.json()["error"]
    assert sorted(ZohoEvent.objects.values_list("event_id", flat=True)) == ["ev-both", "ev-q"]


@pytest.mark.parametrize(("query", "why"), [
    ("name=basic&name=basic", "'name' is repeated"),
    ("name=basic&name=other", "'name' is repeated"),
    ("name", "is not name=value"),
    ("name=basic&", "is not name=value"),
    ("name=%FF", "is not UTF-8"),
    ("", "'name' is missing"),
    ("name=basic&extra=1", "'extra' is not one Zoho is set to send"),
])
def test_repeated_unexpected_and_malformed_query_parameters_are_refused(client, secret, settings, query, why):
    settings.ZOHO_WEBHOOK_QUERY_KEYS = ["name"]
    body = json.dumps(event()).encode()
    signed = webhook_signature(SECRET, body, [tuple(f.split("=", 1)) for f in query.split("&") if "=" in f])
    response = post(client, body, signature=signed, query=query)
    assert response.status_code == 401 and why in response.json()["error"]
    assert not ZohoEvent.objects.exists()


def test_no_query_parameters_are_expected_by_default(client, secret):
    body = json.dumps(event()).encode()
    response = post(client, body, signature=webhook_signature(SECRET, body, {"x": "1"}), query="x=1")
    assert response.status_code == 401 and "'x' is not one Zoho is set to send" in response.json()["error"]
    assert not ZohoEvent.objects.exists()


def test_the_query_cannot_run_into_the_body(client, secret, settings):
    """A value ending in the start of a JSON object, signed, re-sent with that part moved into the body: the same
    string to sign. The genuine one is refused (a '{' in a value); the moved one is no JSON object."""
    settings.ZOHO_WEBHOOK_QUERY_KEYS = ["name"]
    captured = json.dumps(event("ev-real")).encode()
    lure = '{"event_id":"ev-forged","event_type":"payment_thankyou","x":'
    signature = webhook_signature(SECRET, captured, {"name": lure})
    genuine = post(client, captured, signature=signature, query="name=" + lure.replace('"', "%22"))
    assert genuine.status_code == 401 and "holds '{'" in genuine.json()["error"]
    moved = post(client, lure.encode() + captured, signature=signature, query="name=")
    assert moved.status_code == 400 and "not JSON" in moved.json()["error"]
    assert not ZohoEvent.objects.exists()


# --- odd bodies: 400 with a log line, never a 500, nothing stored ---------------------------------------------------
ODD_BODIES = {
    "nested 5000 deep": b'{"a":' + b"[" * 5000 + b"]" * 5000 + b"}",
    "nested 40 deep": b'{"a":' + b'{"a":' * 39 + b"1" + b"}" * 40,
    "NUL in a value": b'{"event_id":"ev-nul","data":{"invoice":{"notes":"a\\u0000b"}}}',
    "NUL in a key": b'{"event_id":"ev-nul","data":{"a\\u0000":1}}',
    "NUL in the id": b'{"event_id":"ev\\u0000"}',
    "lone surrogate": b'{"event_id":"ev-sur","data":{"invoice":{"notes":"\\ud800"}}}',
    "reversed surrogates": b'{"event_id":"ev-sur","notes":"\\udc00\\ud800"}',
    "not UTF-8": b'{"event_id":"ev-latin","notes":"caf\xe9"}',
    "NaN": b'{"event_id":"ev-nan","data":{"invoice":{"total":NaN}}}',
    "Infinity": b'{"event_id":"ev-inf","total":-Infinity}',
    "a float too large": b'{"event_id":"ev-big","total":1e400}',
    "an integer of 5000 digits": b'{"event_id":"ev-int","total":' + b"9" * 5000 + b"}",
    "a repeated key": b'{"event_id":"ev-1","event_id":"ev-2"}',
    "an array": b"[1, 2]",
    "a string": b'"event"',
    "null": b"null",
    "leading whitespace": b' {"event_id":"ev-ws"}',
    "empty": b"",
    "not JSON": b"{not json",
    "trailing data": b'{"event_id":"ev-t"} {}',
    "an event_id that is a list": b'{"event_id":["ev-1"]}',
    "an event_id that is an object": b'{"event_id":{"id":1}}',
    "an event_id that is a float": b'{"event_id":5675.5}',
    "an event_id that is true": b'{"event_id":true}',
    "an event_type that is a number": b'{"event_id":"ev-t","event_type":7}',
    "an event_type too long": b'{"event_id":"ev-t","event_type":"' + b"x" * 65 + b'"}',
}


@pytest.mark.parametrize("case", list(ODD_BODIES))
def test_a_body_the_parser_refuses_is_a_400_with_a_log_line(client, secret, caplog, case):
    body = ODD_BODIES[case]
    with caplog.at_level(logging.WARNING, logger="zoho_sync.views"):
        response = post(client, body, signature=webhook_signature(SECRET, body, {}))
    assert response.status_code == 400, response.content
    why = response.json()["error"]
    assert why and rejected(caplog, 400) and why in rejected(caplog, 400)[0]
    assert "Traceback" not in caplog.text and SECRET not in caplog.text
    assert not ZohoEvent.objects.exists() and not OrmQ.objects.exists()


def test_the_refusals_name_what_is_wrong(client, secret):
    said = {}
    for case in ("nested 5000 deep", "NUL in a value", "lone surrogate", "NaN", "a float too large",
                 "a repeated key", "an event_id that is a list", "not UTF-8"):
        body = ODD_BODIES[case]
        said[case] = post(client, body, signature=webhook_signature(SECRET, body, {})).json()["error"]
    assert said == {
        "nested 5000 deep": "the body is nested deeper than 32 levels",
        "NUL in a value": "data.invoice.notes holds a NUL character or a lone surrogate",
        "lone surrogate": "data.invoice.notes holds a NUL character or a lone surrogate",
        "NaN": "the body is not JSON: NaN is not a number JSON allows",
        "a float too large": "total is a number too large to keep",
        "a repeated key": "the body is not JSON: the key 'event_id' is repeated in one object",
        "an event_id that is a list": "event_id must be a string or a whole number, not list",
        "not UTF-8": "the body is not UTF-8 (byte 35)",
    }


def test_odd_but_valid_text_is_kept_as_sent(client, secret):
    """What the checks let through is stored exactly: escapes, paired surrogates (an emoji), deep-enough nesting."""
    body = (b'{"event_id":"ev-ok","event_type":"card_expiring","data":{"note":"tab\\t quote\\" \\ud83d\\ude00 '
            b'\\u00e9","deep":' + b'{"a":' * 25 + b"1" + b"}" * 25 + b"}}")
    response = post(client, body, signature=webhook_signature(SECRET, body, {}))
    assert (response.status_code, response.json()["status"]) == (200, "accepted")
    stored = ZohoEvent.objects.get()
    assert stored.payload == json.loads(body) and stored.payload["data"]["note"] == 'tab\t quote" \U0001f600 é'


# --- event ids kept whole ---------------------------------------------------------------------------------------
def test_event_ids_are_kept_whole_or_refused(client, secret, caplog):
    prefix = "9" * 64
    longest = deliver(client, event(prefix))
    assert (longest.status_code, longest.json()) == (200, {"status": "accepted", "event_id": prefix})
    with caplog.at_level(logging.WARNING, logger="zoho_sync.views"):
        for tail in ("1", "2"):  # two different ids that the old cut made one ("duplicate")
            response = deliver(client, event(prefix + tail))
            assert response.status_code == 400
            assert response.json()["error"].startswith("event_id is 65 characters long; at most 64 are kept")
    assert len(rejected(caplog, 400)) == 2
    numeric = deliver(client, event(903000000900001))  # a number is Zoho's numeric string
    assert (numeric.status_code, numeric.json()["event_id"]) == (200, "903000000900001")
    assert sorted(ZohoEvent.objects.values_list("event_id", flat=True)) == ["903000000900001", prefix]


def test_event_accept_refuses_what_it_cannot_keep_whole():
    """The inbox's one door refuses, naming the field, for every source (replay and reconciliation too)."""
    for payload, why in [({"event_id": "x" * 65}, "event_id is 65 characters long"),
                         ({"event_type": "payment_thankyou"}, "the event has no event_id"),
                         ({"event_id": 1.5}, "event_id must be a string or a whole number, not float"),
                         ({"event_id": "7", "data": {"payment": {"description": "a\x00b"}}},
                          "event 7: data.payment.description holds a NUL character"),
                         ({"event_id": "8", "total": float("nan")}, "event 8: total is a number too large")]:
        with pytest.raises(inbox.EventRefused, match=why):
            inbox.event_accept(payload, source="replay")
    assert not ZohoEvent.objects.exists()


# --- a chunked body, through gunicorn -----------------------------------------------------------------------------
def test_a_chunked_body_behind_runserver_is_a_clear_411(client, secret):
    body = json.dumps(event()).encode()
    response = client.generic("POST", URL, b"", content_type="application/json", CONTENT_LENGTH="",
                              HTTP_TRANSFER_ENCODING="chunked",
                              HTTP_X_ZOHO_WEBHOOK_SIGNATURE=webhook_signature(SECRET, body, {}))
    assert response.status_code == 411 and not ZohoEvent.objects.exists()


@pytest.fixture
def gunicorn_webhooks(transactional_db, tmp_path):
    """gunicorn as the Procfile starts it, on the test database, with a webhook secret and a 4 KB cap."""
    port = free_port()
    env = {**production_env(tmp_path / "static", port), "ZOHO_WEBHOOK_SECRET": SECRET,
           "ZOHO_WEBHOOK_MAX_BYTES": "4096"}
    log = tmp_path / "gunicorn.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", *shlex.split(procfile()["web"])], cwd=ROOT, env=env,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, f"gunicorn exited ({proc.returncode}):\n{log.read_text()[-3000:]}"
            with contextlib.suppress(requests.RequestException):
                requests.get(f"http://127.0.0.1:{port}/health/", timeout=10, allow_redirects=False)
                break
            assert time.monotonic() < deadline, f"gunicorn did not answer:\n{log.read_text()[-3000:]}"
            time.sleep(0.2)
        yield port, log
    finally:
        Cluster(proc, log).stop()


def chunked_post(port: int, chunks: list[bytes], signature: str) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("POST", URL, body=iter(chunks), encode_chunked=True, headers={
            "Content-Type": "application/json", "X-Zoho-Webhook-Signature": signature,
            "X-Forwarded-Proto": "https"})
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"{}")
    finally:
        conn.close()


def test_a_chunked_delivery_is_read_whole_within_the_cap(gunicorn_webhooks):
    port, log = gunicorn_webhooks
    body = json.dumps(payment_event("ev-chunked", description="x" * 2000)).encode()
    chunks = [body[i:i + 300] for i in range(0, len(body), 300)]
    assert len(chunks) > 5
    status, answer = chunked_post(port, chunks, webhook_signature(SECRET, body, {}))
    assert (status, answer) == (200, {"status": "accepted", "event_id": "ev-chunked"}), log.read_text()[-2000:]
    assert ZohoEvent.objects.get().payload == json.loads(body)
    big = json.dumps(payment_event("ev-big", description="x" * 5000)).encode()
    status, answer = chunked_post(port, [big[i:i + 1000] for i in range(0, len(big), 1000)],
                                  webhook_signature(SECRET, big, {}))
    assert (status, answer) == (413, {"error": "the body is over 4096 bytes"})
    assert list(ZohoEvent.objects.values_list("event_id", flat=True)) == ["ev-chunked"]
    assert "Traceback" not in log.read_text()


# --- an event is only a trigger ---------------------------------------------------------------------------------
def test_a_signed_event_for_a_payment_zoho_does_not_have_changes_nothing(client, secret, zoho_settings, zoho_sandbox,
                                                                         caplog):
    """The phantom payment: a signed payment event whose payment Zoho answers 404 for. Before, its own copy was
    applied and a "synced" payment of 950.00 appeared; now nothing changes and the event waits for a person."""
    invoice = synced_invoice(zoho_sandbox)
    phantom = payment_event(customer_id=invoice.customer.zoho_id, invoices=[
        {"invoice_id": invoice.zoho_id, "amount_applied": 950.0}])
    response = deliver(client, phantom)
    assert (response.status_code, response.json()["status"]) == (200, "accepted")
    stored = ZohoEvent.objects.get()
    with caplog.at_level(logging.ERROR, logger="zoho_sync.inbox"):
        said = inbox.event_apply(stored.pk)
    assert said.startswith("event 5675: quarantined: Zoho has no payment 903000000999999")
    stored.refresh_from_db()
    assert stored.state == "quarantined" and stored.attempts == 1
    assert "Zoho has no payment 903000000999999 (GET /payments/903000000999999: HTTP 404)" in stored.last_error
    assert "nothing changed here" in stored.last_error
    assert any("quarantined" in r.getMessage() for r in caplog.records)
    assert not Payment.objects.exists()
    before = (invoice.status, invoice.balance_due, invoice.sync_status)
    invoice.refresh_from_db()
    assert (invoice.status, invoice.balance_due, invoice.sync_status) == before
    # Applying it again (a person's replay) reads Zoho again: still nothing.
    assert inbox.event_replay([stored.pk]) == 1
    assert "quarantined" in inbox.event_apply(stored.pk)
    assert not Payment.objects.exists()


def test_an_event_naming_a_record_that_is_not_a_zoho_id_is_never_read(client, secret, zoho_settings, zoho_sandbox):
    response = deliver(client, payment_event("ev-path", payment_id="../invoices/1"))
    assert response.status_code == 200
    stored = ZohoEvent.objects.get()
    before = len(zoho_sandbox.requests())
    assert "failed (attempt 1)" in inbox.event_apply(stored.pk)
    stored.refresh_from_db()
    assert "payment_id is not a Zoho id" in stored.last_error
    assert [r for r in zoho_sandbox.requests()[before:] if r.get("api_path")] == []


def test_the_database_keeps_what_the_door_lets_through(client, secret):
    """On PostgreSQL too (jsonb refuses NUL and lone surrogates): the text the checks accept is stored."""
    body = json.dumps({"event_id": "ev-db", "event_type": "card_expiring",
                       "data": {"note": "\u00e9\U0001f600\t", "n": 10**30, "f": 1e300}}).encode()
    assert post(client, body, signature=webhook_signature(SECRET, body, {})).status_code == 200
    data = ZohoEvent.objects.get().payload["data"]
    assert (data["note"], data["n"], float(data["f"])) == ("\u00e9\U0001f600\t", 10**30, 1e300)  # jsonb: numeric
    assert connection.vendor in ("sqlite", "postgresql")


def test_a_query_key_setting_that_could_reach_the_body_is_a_configuration_error(client, secret, settings):
    settings.ZOHO_WEBHOOK_QUERY_KEYS = ['{"event_id"']
    body = json.dumps(event()).encode()
    response = post(client, body, signature=webhook_signature(SECRET, body, {}))
    assert response.status_code == 503 and "ZOHO_WEBHOOK_QUERY_KEYS" in response.json()["error"]
    assert not ZohoEvent.objects.exists()
