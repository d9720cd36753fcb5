"""The inbound HTTP endpoint: Zoho's webhooks into the event inbox. Thin: reading the body is HTTP's; what a
delivery must be (webhooks.webhook_event) and storing it (inbox.event_accept) are services.

Answers: 200 stored (or a duplicate, acknowledged), 200 for a signed request without an event id (Zoho's test
ping, §12.5), 400 a body the strict parser refuses (not one UTF-8 JSON object; nested too deep; a NUL or a lone
surrogate; NaN or a number too large; a repeated key; an event_id that is not a string or a whole number, or over
64 characters), 401 a missing or wrong signature or a query string that is not in the canonical form, 411 a chunked
body the server in front did not decode, 413 a body over ZOHO_WEBHOOK_MAX_BYTES (declared, or read so far when
chunked), 415 a body that is not application/json, 503 no secret configured. The signature covers exactly the query
string and the raw body received, and only those verified bytes are parsed. A rejected request leaves nothing but
a log line.
"""

from __future__ import annotations

import logging

from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from zoho_sync import inbox, webhooks
from zoho_sync.conf import get_inbox_settings
from zoho_sync.models import ZohoEvent

logger = logging.getLogger(__name__)
SIGNATURE_HEADER = "X-Zoho-Webhook-Signature"


def _reject(request, status: int, why: str, size: int) -> JsonResponse:
    logger.warning("Zoho webhook rejected (%d): %s; from %s, %d bytes", status, why,
                   request.META.get("REMOTE_ADDR", "?"), size)
    return JsonResponse({"error": why}, status=status)


def _read_body(request, cap: int) -> bytes:
    """The raw body, whole, at most `cap` bytes (WebhookRefused 413 past it). A chunked body (no Content-Length)
    is read from the server's decoded input: gunicorn decodes chunked requests and says so
    (`wsgi.input_terminated`); a server that does not (Django's runserver) gets 411."""
    too_big = f"the body is over {cap} bytes"
    length = request.META.get("CONTENT_LENGTH")
    if length:
        try:
            declared = int(length)
        except ValueError:
            raise webhooks.WebhookRefused(400, "the Content-Length header is not a number") from None
        if declared > cap:
            raise webhooks.WebhookRefused(413, too_big)
        body = request.read(cap + 1)
    elif "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower():
        if not request.META.get("wsgi.input_terminated"):
            raise webhooks.WebhookRefused(411, "a chunked body needs Content-Length behind this server")
        stream, parts, size = request.META["wsgi.input"], [], 0
        while size <= cap:
            part = stream.read(min(64 * 1024, cap + 1 - size))
            if not part:
                break
            parts.append(part)
            size += len(part)
        body = b"".join(parts)
    else:
        body = b""
    if len(body) > cap:
        raise webhooks.WebhookRefused(413, too_big)
    return body


@csrf_exempt  # authenticated by its signature, not by a session
@require_POST
def zoho_webhook(request):
    conf = get_inbox_settings()
    body = b""
    try:
        body = _read_body(request, conf.webhook_max_bytes)
        payload = webhooks.webhook_event(
            conf, query_string=request.META.get("QUERY_STRING", ""), content_type=request.content_type or "",
            content_params=request.content_params or {}, body=body,
            signature=request.headers.get(SIGNATURE_HEADER, ""))
        if inbox.event_identity(payload) is None:
            return JsonResponse({"status": "ignored", "why": "no event_id (a test ping?)"})
        event, created = inbox.event_accept(payload, source=ZohoEvent.Source.WEBHOOK)
    except webhooks.WebhookRefused as refused:
        return _reject(request, refused.status, refused.why, len(body))
    except inbox.EventRefused as refused:
        return _reject(request, 400, str(refused), len(body))
    return JsonResponse({"status": "accepted" if created else "duplicate", "event_id": event.event_id})
