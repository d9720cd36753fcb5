"""The sandbox's WSGI app: token endpoint, auth and org-header checks, limits, faults, routing, JSON out.

Order for an API request: prefix (§1.1; else 404 code 5) -> scripted or random fault -> `Authorization:
Zoho-oauthtoken <token>` (anything else 401 code 57, §12.9) -> org header (missing/unknown 400 code 2, §12.8)
-> limits (429 codes 44/45/1070, §12.1) -> latency -> "before" holds -> route (404 code 5 / 405 code 37) ->
handler under the store lock -> "after" holds -> slow-answer / lost-answer faults.
The admin prefix /__sandbox__/ skips auth, limits, faults and the request log.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from zoho_sync.client import codes
from zoho_sync.sandbox.errors import ApiError, invalid
from zoho_sync.sandbox.faults import AbortConnection, Fault
from zoho_sync.sandbox.recorder import redact_headers, redact_params
from zoho_sync.sandbox.routes import Call, split_prefix

if TYPE_CHECKING:
    from zoho_sync.sandbox.sandbox import ZohoSandbox

logger = logging.getLogger(__name__)
TOKEN_PATH = "/oauth/v2/token"  # noqa: S105 - a URL path, not a secret
REVOKE_PATH = "/oauth/v2/token/revoke"
ADMIN_PREFIX = "/__sandbox__"
ORG_HEADER = "X-com-zoho-subscriptions-organizationid"
AUTH_SCHEME = "Zoho-oauthtoken "
CONTENT_TYPE = "application/json;charset=UTF-8"  # §1.2


@dataclass
class Answer:
    status: int
    body: Any
    headers: list[tuple[str, str]] = field(default_factory=list)
    code: int | None = None
    route: str | None = None

    @classmethod
    def error(cls, err: ApiError, route: str | None = None) -> Answer:
        headers = [("Retry-After", str(err.retry_after))] if err.retry_after is not None else []
        return cls(err.status, err.body(), headers, err.code.code, route)


def _headers(environ: dict[str, Any]) -> dict[str, str]:
    out = {k[5:].replace("_", "-").title(): v for k, v in environ.items() if k.startswith("HTTP_")}
    if environ.get("CONTENT_TYPE"):
        out["Content-Type"] = environ["CONTENT_TYPE"]
    return out


class SandboxApp:
    def __init__(self, sandbox: ZohoSandbox) -> None:
        self.sb = sandbox

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        method = environ["REQUEST_METHOD"].upper()
        path = environ.get("PATH_INFO") or "/"
        query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True).items()}
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        if path == ADMIN_PREFIX or path.startswith(ADMIN_PREFIX + "/"):
            return self._send(self.sb.admin.handle(method, path[len(ADMIN_PREFIX):], query, raw), start_response)
        headers = _headers(environ)
        api_path = split_prefix(path)
        entry: dict[str, Any] = {"time": self.sb.clock.time(), "method": method, "path": path, "api_path": api_path,
                                 "query": query, "json": None, "headers": redact_headers(headers)}
        started = time.perf_counter()
        try:
            if path in (TOKEN_PATH, REVOKE_PATH):
                form = dict(query)
                if raw and "json" not in headers.get("Content-Type", ""):
                    form.update({k: v[0] for k, v in parse_qs(raw.decode("latin-1"), keep_blank_values=True).items()})
                entry["query"], entry["form"] = redact_params(query), redact_params(form)
                answer = self._token(method, path, form, environ)
            else:
                entry["json"] = self._json_or_text(raw)
                answer = self._api(method, api_path, query, raw, headers)
        except AbortConnection:
            entry.update(status=None, code=None, outcome="reset", duration=time.perf_counter() - started)
            self.sb.recorder.record(entry)
            raise
        entry.update(status=answer.status, code=answer.code, route=answer.route, outcome="answered",
                     duration=time.perf_counter() - started)
        if isinstance(answer.body, dict) and "error" in answer.body:
            entry["oauth_error"] = answer.body["error"]
        self.sb.recorder.record(entry)
        return self._send(answer, start_response)

    @staticmethod
    def _json_or_text(raw: bytes) -> Any:
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return raw[:2000].decode("utf-8", "replace")

    @staticmethod
    def _send(answer: Answer, start_response: Callable[..., Any]) -> list[bytes]:
        data = json.dumps(answer.body, separators=(",", ":")).encode()
        start_response(f"{answer.status} {_REASONS.get(answer.status, 'Status')}",
                       [("Content-Type", CONTENT_TYPE), ("Content-Length", str(len(data))), *answer.headers])
        return [data]

    def _apply_fault(self, fault: Fault | None) -> Answer | None:
        if fault is None or fault.kind is None:
            return None
        if fault.kind == "reset":
            raise AbortConnection
        if fault.kind == "error":
            err = ApiError(fault.code or codes.INTERNAL_ERROR, status=fault.status, retry_after=fault.retry_after,
                           limit=self.sb.config.daily, field="request", resource="Resource", reason="injected")
            return Answer.error(err)
        return None

    def _token(self, method: str, path: str, form: dict[str, str], environ: dict[str, Any]) -> Answer:
        if method != "POST":
            return Answer.error(ApiError(codes.METHOD_NOT_ALLOWED))
        fault = self.sb.faults.decide(method, path, api=False)
        injected = self._apply_fault(fault)
        if injected:
            return injected
        if fault and fault.latency:
            self.sb.sleep(fault.latency)
        self.sb.holds.pause(method, path, "before")
        if path == REVOKE_PATH:
            self.sb.tokens.revoke(form.get("token", ""))
            answer = Answer(200, {"status": "success"})
        else:
            host = environ.get("HTTP_HOST") or f"{environ.get('SERVER_NAME')}:{environ.get('SERVER_PORT')}"
            status, body = self.sb.tokens.mint(
                client_id=form.get("client_id", ""), client_secret=form.get("client_secret", ""),
                refresh_token=form.get("refresh_token", ""), grant_type=form.get("grant_type", ""),
                api_domain=f"http://{host}")
            answer = Answer(status, body)
        self.sb.holds.pause(method, path, "after")
        self._after(fault)
        return answer

    def _after(self, fault: Fault | None) -> None:
        if fault and fault.kind == "timeout":
            self.sb.sleep(fault.seconds)  # the work is done; the answer comes too late for the client
        if fault and fault.kind == "lose_response":
            raise AbortConnection  # the write is applied, the client never hears of it

    def _api(self, method: str, api_path: str | None, query: dict[str, str], raw: bytes,
             headers: dict[str, str]) -> Answer:
        if api_path is None:
            return Answer.error(ApiError(codes.INVALID_URL))
        fault = self.sb.faults.decide(method, api_path, api=True)
        injected = self._apply_fault(fault)
        if injected:
            return injected
        auth = headers.get("Authorization", "")
        org = headers.get(ORG_HEADER.title(), "").strip()
        if not auth.startswith(AUTH_SCHEME) or not self.sb.tokens.valid(auth[len(AUTH_SCHEME):].strip()):
            if self.sb.config.count_unauthorized and org == self.sb.config.organization_id:
                try:
                    with self.sb.limiter.admit(org):  # counted like any request (a 429 when over the limit)
                        pass
                except ApiError as err:
                    return Answer.error(err)
            return Answer.error(ApiError(codes.NOT_AUTHORIZED))
        if org != self.sb.config.organization_id:
            return Answer.error(ApiError(codes.INVALID_VALUE, field="organization_id"))
        try:
            with self.sb.limiter.admit(org):
                if fault and fault.latency:
                    self.sb.sleep(fault.latency)
                self.sb.holds.pause(method, api_path, "before")
                answer = self._dispatch(method, api_path, query, raw)
                self.sb.holds.pause(method, api_path, "after")  # the write is stored; the answer waits
                self._after(fault)
                return answer
        except ApiError as err:  # refused by a limit
            return Answer.error(err)

    def _dispatch(self, method: str, api_path: str, query: dict[str, str], raw: bytes) -> Answer:
        route_name = None
        try:
            route, params = self.sb.router.match(method, api_path)
            route_name = route.template
            try:
                body = json.loads(raw) if raw.strip() else None
            except ValueError as exc:
                raise invalid("JSONString") from exc
            with self.sb.store.lock:
                status, payload = route.handler(self.sb.store, Call(method, api_path, query, body, params))
            return Answer(status, payload, code=codes.SUCCESS, route=route_name)
        except ApiError as err:
            return Answer.error(err, route_name)
        except Exception:  # a sandbox bug: answer like Zoho's internal error, and say so in the log
            logger.exception("sandbox handler failed for %s %s", method, api_path)
            return Answer.error(ApiError(codes.INTERNAL_ERROR), route_name)


_REASONS = {200: "OK", 201: "Created", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found",
            405: "Method Not Allowed", 429: "Too Many Requests", 500: "Internal Server Error",
            503: "Service Unavailable"}
