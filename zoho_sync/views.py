"""The inbound HTTP endpoint: Zoho's webhooks into the event inbox. Thin: verification and storage are services.

Answers: 200 stored (or a duplicate, acknowledged), 200 for a signed request without an event id (Zoho's test
ping, §12.5), 400 a body that is not a JSON object, 401 a missing or wrong signature, 413 a body over
ZOHO_WEBHOOK_MAX_BYTES, 503 no secret configured. A rejected request leaves nothing but a log line.
"""

from __future__ import annotations

import json
import logging
from urllib.parse import parse_qsl

from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from zoho_sync import inbox
from zoho_sync.conf import get_inbox_settings
from zoho_sync.models import ZohoEvent

logger = logging.getLogger(__name__)
SIGNATURE_HEADER = "X-Zoho-Webhook-Signature"


def _reject(request, status: int, why: str, size: int) -> JsonResponse:
    logger.warning("Zoho webhook rejected (%d): %s; from %s, %d bytes", status, why,
                   request.META.get("REMOTE_ADDR", "?"), size)
    return JsonResponse({"error": why}, status=status)


@csrf_exempt  # authenticated by its signature, not by a session
@require_POST
def zoho_webhook(request):
    conf = get_inbox_settings()
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > conf.webhook_max_bytes:
        return _reject(request, 413, f"the body is over {conf.webhook_max_bytes} bytes", declared)
    body = request.read(conf.webhook_max_bytes + 1)
    if len(body) > conf.webhook_max_bytes:
        return _reject(request, 413, f"the body is over {conf.webhook_max_bytes} bytes", len(body))
    if not conf.webhook_secret:
        return _reject(request, 503, "webhooks are not configured here (ZOHO_WEBHOOK_SECRET)", len(body))
    signature = request.headers.get(SIGNATURE_HEADER, "")
    if not signature:
        return _reject(request, 401, f"no {SIGNATURE_HEADER} header", len(body))
    params = dict(parse_qsl(request.META.get("QUERY_STRING", ""), keep_blank_values=True))
    if request.content_type == "application/x-www-form-urlencoded":
        params.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        signed_body = b""
    else:
        signed_body = body
    if not inbox.webhook_verify(conf.webhook_secret, signed_body, params, signature):
        return _reject(request, 401, "the signature does not match", len(body))
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        return _reject(request, 400, "the body is not JSON", len(body))
    if not isinstance(payload, dict):
        return _reject(request, 400, "the body is not a JSON object", len(body))
    if not payload.get("event_id") or not isinstance(payload.get("event_id"), str | int):
        return JsonResponse({"status": "ignored", "why": "no event_id (a test ping?)"})
    event, created = inbox.event_accept(payload, source=ZohoEvent.Source.WEBHOOK)
    return JsonResponse({"status": "accepted" if created else "duplicate", "event_id": event.event_id})
