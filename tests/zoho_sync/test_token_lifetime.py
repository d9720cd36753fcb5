"""Refresh ahead of expiry by the smaller of 5 minutes and a tenth of the token's life: one mint per lifetime.

The calls below are spaced by moving the sandbox's manual clock; the client's own waits would move it too (the
`slept` fixture), so "no stall" is `slept == []` with the clock exactly where the spacing put it.
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from tests.zoho_sync.conftest import token_requests
from zoho_sync.client import auth
from zoho_sync.client.auth import MemoryTokenStore, TokenState, TokenThrottledError
from zoho_sync.shared_state import TOKEN_CODEC, DatabaseStateBackend


def call_for(client, sandbox, *, seconds: float, spacing: float = 1.0) -> list[float]:
    """Call Zoho every `spacing` seconds for `seconds`; return when (seconds into the run) each mint happened."""
    start, mint_times = sandbox.clock.time(), []
    while sandbox.clock.time() - start < seconds:
        before = token_requests(sandbox)
        assert client.get("/customers")["code"] == 0
        if token_requests(sandbox) > before:
            mint_times.append(sandbox.clock.time() - start)
        sandbox.advance(spacing)
    return mint_times


def test_short_lived_token_costs_one_mint_per_lifetime(make_client, zoho_sandbox, slept, monkeypatch):
    """A 30 s token over 5 minutes: one mint every 27 s (90 % of its life), never one per call.

    Zoho's 10 mints per 10 minutes cannot carry a 30 s token for 5 minutes (that takes 11 lifetimes at the very
    least), so both sides' mint limits are lifted here: this test measures the rate, the next one the limit.
    """
    monkeypatch.setattr(auth, "MINT_LIMIT", 1000)
    zoho_sandbox.configure(token_ttl=30, token_mint_limit=0)
    start = zoho_sandbox.clock.time()
    mint_times = call_for(make_client(), zoho_sandbox, seconds=300)
    assert len(mint_times) <= 300 / 15 + 1
    assert mint_times == [27.0 * n for n in range(12)]
    assert slept == [] and zoho_sandbox.clock.time() - start == 300
    assert not [r for r in zoho_sandbox.requests() if r.get("status") == 401]


def test_short_lived_token_lasts_ten_lifetimes_on_zohos_ten_mints(make_client, zoho_sandbox, slept):
    """Under Zoho's real limit a 30 s token carries 4 minutes of calls without a wait (each call used to mint).

    The 11th mint inside 10 minutes is refused by the client itself, 9 lifetimes in, not in the first seconds.
    """
    zoho_sandbox.configure(token_ttl=30)
    client = make_client()
    start = zoho_sandbox.clock.time()
    assert call_for(client, zoho_sandbox, seconds=240) == [27.0 * n for n in range(9)]
    assert slept == [] and zoho_sandbox.clock.time() - start == 240
    with pytest.raises(TokenThrottledError):
        call_for(client, zoho_sandbox, seconds=60)
    assert zoho_sandbox.clock.time() - start == 270 and token_requests(zoho_sandbox) == 10
    assert not [r for r in zoho_sandbox.requests("POST", "/oauth/v2/token") if r.get("status") != 200]


def test_hour_token_is_still_refreshed_five_minutes_ahead(make_client, zoho_sandbox, slept):
    """Zoho's 3600 s token: a tenth of its life (6 minutes) is more than 5, so the 5-minute margin holds."""
    mint_times = call_for(make_client(), zoho_sandbox, seconds=3400, spacing=10)
    assert mint_times == [0, 3300]
    assert slept == []


@pytest.mark.django_db(transaction=True)
def test_lifetime_is_shared_through_the_store(make_client, zoho_sandbox):
    """Another process reading a 30 s token from the database judges it by its own lifetime too."""
    zoho_sandbox.configure(token_ttl=30)
    store = DatabaseStateBackend("token", TOKEN_CODEC)
    first, second = make_client(token_store=store), make_client(token_store=store)
    first.get("/customers")
    call_for(second, zoho_sandbox, seconds=27)
    assert (first.tokens.mints, second.tokens.mints, token_requests(zoho_sandbox)) == (1, 0, 1)
    second.get("/customers")  # 27 s in: a tenth of 30 s before expiry
    assert (second.tokens.mints, token_requests(zoho_sandbox)) == (1, 2)


def test_token_state_without_a_lifetime_still_loads():
    """States stored before the lifetime existed load with lifetime 0: judged by the full margin, as then."""
    old = json.dumps({"access_token": "", "expires_at": 1e9, "mints": [1.0], "lease_holder": "", "lease_until": 0.0,
                      "throttled_until": 0.0})
    state = TOKEN_CODEC.load(old)
    assert state == TokenState(expires_at=1e9, mints=[1.0]) and state.lifetime == 0.0
    assert TokenState.from_dict({**state.as_dict(), "written_by_a_newer_version": 1}) == state


def test_a_stored_token_of_unknown_lifetime_is_judged_by_the_full_margin(make_client, zoho_sandbox):
    """A token stored by an older version (no lifetime) is replaced once; its successor's lifetime is known."""
    zoho_sandbox.configure(token_ttl=30)
    store = MemoryTokenStore()
    first = make_client(token_store=store)
    first.get("/customers")
    store.update(first.tokens.key, lambda state: (replace(state, lifetime=0.0), None))
    second = make_client(token_store=store)
    call_for(second, zoho_sandbox, seconds=20)
    assert (second.tokens.mints, token_requests(zoho_sandbox)) == (1, 2)
