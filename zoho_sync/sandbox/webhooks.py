"""Outgoing webhooks: each event POSTed as JSON from a background thread, signed per §12.5.

Signature: HMAC-SHA256 keyed with the secret, over the query parameters sorted by key and concatenated as
key1value1key2value2..., followed by the raw body; lower-case hex (or base64 when configured), in the header
X-Zoho-Webhook-Signature. Delivery is once by default, configurably twice or late; each attempt's outcome is
written to the event's `webhooks[]` (`scheduled`, then `success` or `failure`). `drop(n)` loses the next n
deliveries on purpose: never sent, written as `failure` at once, so a test can prove event replay recovers them.
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import hmac
import itertools
import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from zoho_sync.sandbox.config import SandboxConfig

logger = logging.getLogger(__name__)
SIGNATURE_HEADER = "X-Zoho-Webhook-Signature"
WEBHOOK_ID = "903000000900001"  # the one configured webhook


def sign(secret: str, body: bytes, params: dict[str, str] | None = None, encoding: str = "hex") -> str:
    """The §12.5 signature of a request with these query/form `params` and raw `body`."""
    message = "".join(f"{k}{v}" for k, v in sorted((params or {}).items())).encode() + body
    digest = hmac.new(secret.encode(), message, hashlib.sha256)
    return digest.hexdigest() if encoding == "hex" else base64.b64encode(digest.digest()).decode()


class WebhookDispatcher:
    def __init__(self, store: Any, config: Callable[[], SandboxConfig]) -> None:
        self._store = store
        self._config = config
        self._cond = threading.Condition()
        self._queue: list[tuple[float, int, dict[str, Any], int]] = []
        self._seq = itertools.count()
        self._busy = 0
        self._drops = 0  # deliveries still to lose on purpose
        self._run_id = 0  # bumped by stop(): a thread whose run id is stale exits
        self._thread: threading.Thread | None = None
        # No proxies: the receiver is on this machine.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def start(self) -> None:
        with self._cond:
            self._run_id += 1
            run_id = self._run_id
        self._thread = threading.Thread(target=self._run, args=(run_id,), name="zoho-sandbox-webhooks", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop sending. A delivery under way is not waited for (it may take `webhook_timeout`); its daemon
        thread records the outcome and exits, and a later start() never runs alongside it."""
        with self._cond:
            self._run_id += 1
            self._cond.notify_all()
        if self._thread:
            self._thread.join(timeout=0.2)
            self._thread = None

    def clear(self) -> None:
        with self._cond:
            self._queue.clear()
            self._drops = 0

    def drop(self, count: int) -> int:
        """Lose the next `count` deliveries (replacing any count still pending); 0 cancels."""
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ValueError("the number of deliveries to drop must be a whole number >= 0")
        with self._cond:
            self._drops = count
        return count

    @property
    def drops_pending(self) -> int:
        with self._cond:
            return self._drops

    def enqueue(self, event: dict[str, Any]) -> None:
        """Schedule the configured deliveries of `event` (called by the store, under its lock)."""
        config = self._config()
        if not config.webhook_url:
            return
        due = time.monotonic() + config.webhook_delay
        with self._cond:
            for attempt in range(config.webhook_deliveries):
                entry = {"webhook_id": WEBHOOK_ID, "url": config.webhook_url, "status": "scheduled",
                         "last_updated_time": event["event_time"]}
                event["webhooks"].append(entry)
                if self._drops:
                    self._drops -= 1
                    entry["status"] = "failure"
                    logger.info("webhook delivery of event %s dropped on purpose", event["event_id"])
                    continue
                heapq.heappush(self._queue, (due + attempt * 0.01, next(self._seq), event, len(event["webhooks"]) - 1))
            self._cond.notify_all()

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Block until nothing is queued or being sent; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._queue or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.05))
        return True

    def _run(self, run_id: int) -> None:
        while True:
            with self._cond:
                while run_id == self._run_id and (not self._queue or self._queue[0][0] > time.monotonic()):
                    wait = self._queue[0][0] - time.monotonic() if self._queue else None
                    self._cond.wait(wait if wait is None else max(wait, 0.001))
                if run_id != self._run_id:
                    return
                _, _, event, index = heapq.heappop(self._queue)
                self._busy += 1
            try:
                self._deliver(event, index)
            finally:
                with self._cond:
                    self._busy -= 1
                    self._cond.notify_all()

    def _deliver(self, event: dict[str, Any], index: int) -> None:
        config = self._config()
        body = event["payload"].encode()
        url = config.webhook_url
        if config.webhook_params:
            url += ("&" if "?" in url else "?") + urlencode(config.webhook_params)
        headers = {"Content-Type": "application/json"}
        if config.webhook_secret:
            headers[SIGNATURE_HEADER] = sign(config.webhook_secret, body, config.webhook_params,
                                             config.webhook_encoding)
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"webhook_url must be http(s): {url!r}")
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310 - checked
        try:
            with self._opener.open(request, timeout=config.webhook_timeout) as response:
                status = "success" if 200 <= response.status < 300 else "failure"
        except (urllib.error.URLError, OSError, ValueError) as exc:
            logger.info("webhook delivery of event %s failed: %s", event["event_id"], exc)
            status = "failure"
        with self._store.lock:
            event["webhooks"][index].update(status=status, last_updated_time=self._store.timestamp())
            self._store.touch()
