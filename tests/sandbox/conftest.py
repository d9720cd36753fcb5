"""Helpers for the sandbox's own tests: an API caller over real HTTP, a webhook receiver, the OpenAPI docs."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from tests.openapi_support import OpenAPIDocs, load_docs, require_spec_dir
from tests.sandbox.openapi_deviations import DEVIATIONS
from zoho_sync.sandbox import ZohoSandbox

ORG_HEADER = "X-com-zoho-subscriptions-organizationid"


class Api:
    """Calls the sandbox like a client would: one requests.Session, one token minted over HTTP."""

    def __init__(self, sandbox: ZohoSandbox) -> None:
        self.sandbox = sandbox
        self.session = requests.Session()
        self._token: str | None = None
        self._product_id: str | None = None

    def mint(self, **overrides: str) -> requests.Response:
        config = self.sandbox.config
        params = {"refresh_token": config.refresh_token, "client_id": config.client_id,
                  "client_secret": config.client_secret, "grant_type": "refresh_token", **overrides}
        return self.session.post(f"{self.sandbox.accounts_url}/oauth/v2/token", params=params, timeout=5)

    @property
    def token(self) -> str:
        if self._token is None:
            self._token = self.mint().json()["access_token"]
        return self._token

    def headers(self, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Zoho-oauthtoken {self.token}", ORG_HEADER: self.sandbox.config.organization_id,
                **extra}

    def call(self, method: str, path: str, *, headers: dict[str, str] | None = None, timeout: float = 5,
             **kwargs: Any) -> requests.Response:
        url = path if path.startswith("http") else f"{self.sandbox.base_url}{path}"
        return self.session.request(method, url, headers=self.headers() if headers is None else headers,
                                    timeout=timeout, **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.call("GET", path, **kwargs)

    def post(self, path: str, json: Any = None, **kwargs: Any) -> requests.Response:
        return self.call("POST", path, json=json, **kwargs)

    def put(self, path: str, json: Any = None, **kwargs: Any) -> requests.Response:
        return self.call("PUT", path, json=json, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> requests.Response:
        return self.call("DELETE", path, **kwargs)

    # -- builders ----------------------------------------------------------------------------------------
    def customer(self, name: str = "Acme Ltd", **fields: Any) -> dict[str, Any]:
        response = self.post("/customers", {"display_name": name, "email": "billing@acme.test", **fields})
        assert response.status_code == 201, response.text
        return response.json()["customer"]

    def product(self, name: str = "Installation", **fields: Any) -> dict[str, Any]:
        response = self.post("/products", {"name": name, **fields})
        assert response.status_code == 201, response.text
        return response.json()["product"]

    @property
    def product_id(self) -> str:
        """One product for invoice lines (invoice_items[].product_id is required, §12.11), made on first use."""
        if self._product_id is None:
            self._product_id = self.product()["product_id"]
        return self._product_id

    def line(self, price: float = 100, quantity: float = 1, **fields: Any) -> dict[str, Any]:
        """An invoice line on this API's product."""
        return {"product_id": self.product_id, "price": price, "quantity": quantity, **fields}

    def plan(self, code: str = "NET-100", price: float = 30, **fields: Any) -> dict[str, Any]:
        product = self.post("/products", {"name": f"Product for {code}"}).json()["product"]
        body = {"plan_code": code, "name": f"Plan {code}", "recurring_price": price, "interval": 1,
                "product_id": product["product_id"], **fields}
        response = self.post("/plans", body)
        assert response.status_code == 201, response.text
        return response.json()["plan"]

    def subscription(self, customer_id: str, plan_code: str, **fields: Any) -> requests.Response:
        body = {"customer_id": customer_id, "plan": {"plan_code": plan_code}, "auto_collect": False, **fields}
        return self.post("/subscriptions", body)

    def invoice(self, customer_id: str, amount: float = 100, **fields: Any) -> dict[str, Any]:
        body = {"customer_id": customer_id, "date": self.sandbox.store.today().isoformat(),
                "invoice_items": [self.line(amount, name="Installation")], **fields}
        response = self.post("/invoices", body)
        assert response.status_code == 201, response.text
        return response.json()["invoice"]


@pytest.fixture
def api(zoho_sandbox: ZohoSandbox) -> Api:
    return Api(zoho_sandbox)


@pytest.fixture(scope="session")
def openapi_docs() -> OpenAPIDocs:
    return load_docs(str(require_spec_dir()), DEVIATIONS)


class WebhookReceiver:
    """A tiny HTTP server on 127.0.0.1 port 0 that stores what it receives and answers `status`."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.status = 200
        self.arrived = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.arrived:
                    receiver.received.append({"path": self.path, "headers": dict(self.headers), "raw": raw,
                                              "json": json.loads(raw)})
                    receiver.arrived.notify_all()
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/zoho"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def wait_for(self, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.received) >= count, timeout=timeout)
        return list(self.received)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook_receiver() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    yield receiver
    receiver.close()
