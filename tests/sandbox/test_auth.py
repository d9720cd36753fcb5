"""OAuth token endpoint and API authentication (zoho-billing-api.md §2, §12.4, §12.8, §12.9)."""

from __future__ import annotations

from zoho_sync.client import codes
from zoho_sync.sandbox import ZohoSandbox
from zoho_sync.sandbox.oauth import THROTTLED

from .conftest import ORG_HEADER, Api


def test_refresh_grant_returns_a_bearer_token_for_an_hour(api: Api, zoho_sandbox: ZohoSandbox) -> None:
    response = api.mint()
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "expires_in", "api_domain", "token_type"}
    assert body["expires_in"] == 3600 and body["token_type"] == "Bearer"
    assert body["api_domain"] == zoho_sandbox.url
    assert api.get("/customers", headers={"Authorization": f"Zoho-oauthtoken {body['access_token']}",
                                          ORG_HEADER: zoho_sandbox.config.organization_id}).status_code == 200


def test_params_may_come_as_a_form_body(api: Api, zoho_sandbox: ZohoSandbox) -> None:
    config = zoho_sandbox.config
    response = api.session.post(f"{zoho_sandbox.accounts_url}/oauth/v2/token", data={
        "refresh_token": config.refresh_token, "client_id": config.client_id, "client_secret": config.client_secret,
        "grant_type": "refresh_token"}, timeout=5)
    assert response.status_code == 200 and "access_token" in response.json()


def test_bad_refresh_token_and_bad_client_answer_200_with_an_error(api: Api, zoho_sandbox: ZohoSandbox) -> None:
    bad_code = api.mint(refresh_token="1000.not-a-token")
    assert (bad_code.status_code, bad_code.json()) == (200, {"error": "invalid_code"})
    bad_client = api.mint(client_secret="wrong")
    assert (bad_client.status_code, bad_client.json()) == (200, {"error": "invalid_client"})
    assert api.mint(client_id="1000.OTHER").json() == {"error": "invalid_client"}


def test_revoked_refresh_token_is_invalid_code_and_kills_its_tokens(api: Api, zoho_sandbox: ZohoSandbox) -> None:
    assert api.get("/customers").status_code == 200
    zoho_sandbox.revoke_refresh_token()
    assert api.mint().json() == {"error": "invalid_code"}
    assert api.get("/customers").json()["code"] == codes.NOT_AUTHORIZED.code


def test_revoke_endpoint(api: Api, zoho_sandbox: ZohoSandbox) -> None:
    response = api.session.post(f"{zoho_sandbox.accounts_url}/oauth/v2/token/revoke",
                                params={"token": zoho_sandbox.config.refresh_token}, timeout=5)
    assert response.json() == {"status": "success"}
    assert api.mint().json() == {"error": "invalid_code"}


def test_eleventh_mint_in_ten_minutes_is_refused_until_the_window_rolls(api: Api, zoho_sandbox: ZohoSandbox) -> None:
    for _ in range(10):
        assert api.mint().status_code == 200
        zoho_sandbox.advance(30)  # ten mints over 4.5 minutes
    refused = api.mint()
    assert (refused.status_code, refused.json()) == (400, THROTTLED)
    assert refused.json()["error"] == "Access Denied"
    zoho_sandbox.advance(600 - 300 + 1)  # the first mint leaves the rolling window
    assert api.mint().status_code == 200
    assert api.mint().status_code == 400  # the second one has not left yet


def test_eleventh_active_token_invalidates_the_oldest(api: Api, zoho_sandbox: ZohoSandbox) -> None:
    zoho_sandbox.configure(token_mint_limit=0)  # isolate the active-token cap from the mint limit
    tokens = [api.mint().json()["access_token"] for _ in range(11)]
    org = {ORG_HEADER: zoho_sandbox.config.organization_id}
    status = [api.get("/customers", headers={"Authorization": f"Zoho-oauthtoken {t}", **org}).status_code
              for t in tokens]
    assert status == [401] + [200] * 10


def test_token_expires_after_3600_seconds(api: Api, zoho_sandbox: ZohoSandbox) -> None:
    assert api.get("/customers").status_code == 200
    zoho_sandbox.advance(3599)
    assert api.get("/customers").status_code == 200
    zoho_sandbox.advance(1)
    expired = api.get("/customers")
    assert (expired.status_code, expired.json()["code"]) == (401, codes.NOT_AUTHORIZED.code)


def test_expire_tokens_hook(api: Api, zoho_sandbox: ZohoSandbox) -> None:
    assert api.get("/customers").status_code == 200
    assert zoho_sandbox.expire_tokens() == 1
    assert api.get("/customers").status_code == 401
    api._token = None
    assert api.get("/customers").status_code == 200  # a fresh token works


def test_only_zoho_oauthtoken_scheme_is_accepted(api: Api, zoho_sandbox: ZohoSandbox) -> None:
    org = {ORG_HEADER: zoho_sandbox.config.organization_id}
    for auth in (f"Bearer {api.token}", f"Zoho-authtoken {api.token}", "Zoho-oauthtoken 1000.unknown", ""):
        response = api.get("/customers", headers={"Authorization": auth, **org} if auth else org)
        assert response.status_code == 401
        assert response.json() == {"code": codes.NOT_AUTHORIZED.code, "message": codes.NOT_AUTHORIZED.message}


def test_org_header_missing_or_unknown_is_invalid_value(api: Api, zoho_sandbox: ZohoSandbox) -> None:
    auth = {"Authorization": f"Zoho-oauthtoken {api.token}"}
    for headers in (auth, {**auth, ORG_HEADER: "999"}):
        response = api.get("/customers", headers=headers)
        assert response.status_code == 400
        assert response.json() == {"code": codes.INVALID_VALUE.code,
                                   "message": "Invalid value passed for organization_id"}


def test_legacy_prefixes_route_the_same(api: Api, zoho_sandbox: ZohoSandbox) -> None:
    created = api.customer()
    for prefix in ("/subscriptions/v1", "/api/v1"):
        response = api.get(f"{zoho_sandbox.url}{prefix}/customers/{created['customer_id']}")
        assert response.json()["customer"]["display_name"] == created["display_name"]
    assert api.get(f"{zoho_sandbox.url}/books/v3/customers").json()["code"] == codes.INVALID_URL.code


def test_request_log_redacts_the_token_and_secrets(api: Api, zoho_sandbox: ZohoSandbox) -> None:
    api.post("/customers", {"display_name": "Logged"})
    entry = zoho_sandbox.last_request("POST", "/customers")
    assert entry["headers"]["Authorization"] == "Zoho-oauthtoken <redacted>"
    assert entry["json"] == {"display_name": "Logged"}
    assert (entry["status"], entry["code"], entry["route"]) == (201, 0, "/customers")
    token_entry = zoho_sandbox.last_request("POST", "/oauth/v2/token")
    assert token_entry["query"]["client_secret"] == "<redacted>"
    assert token_entry["query"]["refresh_token"] == "<redacted>"
    assert zoho_sandbox.config.client_secret not in repr(zoho_sandbox.requests())
