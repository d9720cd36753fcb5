"""Keep secrets out of anything stored or printed: sync logs, log lines, exception text.

Two nets: keys that name secrets are masked wherever they appear in a structure, and every secret value this
process knows (settings, tokens it minted) is replaced in free text. Also caps stored bodies at a size.
"""

from __future__ import annotations

import json
import re
import threading
from typing import Any

MASK = "[redacted]"
DEFAULT_LIMIT = 8192

SECRET_KEY_PATTERN = re.compile(
    r"(token|secret|password|passwd|authorization|api[_-]?key|signature|cookie|refresh|client_id)", re.IGNORECASE
)
# Token shapes that must never be stored even if this process never saw the value (a header copied into text).
SECRET_TEXT_PATTERNS = (
    (re.compile(r"(Zoho-oauthtoken|Bearer)\s+[^\s\"',;\\]+", re.IGNORECASE), rf"\1 {MASK}"),
    (re.compile(r"\b1000\.[0-9a-f]{32}\.[0-9a-f]{32}\b"), MASK),
    (re.compile(r"((?:access|refresh)_token|client_secret)=([^&\s\"']+)", re.IGNORECASE), rf"\1={MASK}"),
)

_known_secrets: set[str] = set()
_lock = threading.Lock()


def secret_register(value: str | None) -> None:
    """Remember a secret value (a client secret, a refresh or access token) so it is masked everywhere."""
    if value and len(value) >= 6:
        with _lock:
            _known_secrets.add(value)


def _settings_secrets() -> tuple[str, ...]:
    try:
        from django.conf import settings

        names = ("ZOHO_CLIENT_SECRET", "ZOHO_REFRESH_TOKEN", "ZOHO_WEBHOOK_SECRET", "SECRET_KEY",
                 "MONITORING_PROMETHEUS_PASSWORD",
                 "MONITORING_SLACK_WEBHOOK_URL", "MONITORING_DISCORD_WEBHOOK_URL", "MONITORING_WEBHOOK_URL")
        return tuple(str(getattr(settings, n, "") or "") for n in names)
    except Exception:  # settings not configured (plain-Python use, e.g. the sandbox)
        return ()


def redact_text(text: str, *, json_text: bool = False) -> str:
    """Return text with every known secret value and every token-shaped string masked. `json_text`: the text is
    JSON, so each secret is also looked for as JSON writes it inside a string (quotes and backslashes escaped)."""
    if not text:
        return text
    with _lock:
        values = set(_known_secrets)
    values.update(v for v in _settings_secrets() if len(v) >= 6)
    if json_text:
        values.update([json.dumps(v, ensure_ascii=False)[1:-1] for v in values])
    for value in sorted(values, key=len, reverse=True):
        text = text.replace(value, MASK)
    for pattern, replacement in SECRET_TEXT_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def _mask_keys(data: Any, scrub=None) -> Any:
    """A copy of a JSON-like structure with the values of secret-named keys masked, and `scrub` applied to every
    other string."""
    if isinstance(data, dict):
        return {
            k: (MASK if isinstance(k, str) and SECRET_KEY_PATTERN.search(k) and v not in (None, "")
                else _mask_keys(v, scrub))
            for k, v in data.items()
        }
    if isinstance(data, (list, tuple)):
        return [_mask_keys(v, scrub) for v in data]
    if isinstance(data, str) and scrub is not None:
        return scrub(data)
    return data


def cap(text: str, limit: int = DEFAULT_LIMIT) -> str:
    """Cut text to at most `limit` characters, saying how much was cut."""
    if len(text) <= limit:
        return text
    cut = len(text) - limit
    return f"{text[:limit]}... [truncated {cut} characters]"


def body_for_storage(body: Any, limit: int = DEFAULT_LIMIT) -> str:
    """Serialise a request or response body for storage: redacted, then size-capped."""
    if body is None or body == "":
        return ""
    if isinstance(body, (bytes, bytearray)):
        body = body.decode("utf-8", errors="replace")
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except ValueError:
            return cap(redact_text(body), limit)
    # Secret-named keys masked in the structure, then the text scrubbed once (not every string on its own).
    text = json.dumps(_mask_keys(body), default=str, ensure_ascii=False)
    return cap(redact_text(text, json_text=True), limit)
