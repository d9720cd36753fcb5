"""The configured Zoho client of this process, its token cache and rate budget shared with every other process."""

from __future__ import annotations

import threading

from zoho_sync.client.budget import BudgetPolicy
from zoho_sync.client.http import ZohoClient
from zoho_sync.client.retry import RetryPolicy
from zoho_sync.conf import ZohoSettings, get_zoho_settings
from zoho_sync.shared_state import state_backends

_lock = threading.Lock()
_clients: dict[ZohoSettings, ZohoClient] = {}


def client_build(conf: ZohoSettings, **overrides) -> ZohoClient:
    """A new client for these settings, sharing state through the database (or Redis when configured)."""
    limits = conf.limits
    token_store, budget_backend = state_backends(limits.redis_url)
    options = {
        "api_base_url": conf.api_base_url,
        "accounts_url": conf.accounts_url,
        "client_id": conf.client_id,
        "client_secret": conf.client_secret,
        "refresh_token": conf.refresh_token,
        "organization_id": conf.organization_id,
        "token_store": token_store,
        "budget_backend": budget_backend,
        "budget_policy": BudgetPolicy(
            per_minute=limits.per_minute, headroom=limits.headroom, daily_limit=limits.daily_limit,
            daily_reserve=limits.daily_reserve, bulk_share=limits.bulk_share,
            max_concurrency=limits.max_concurrency,
        ),
        "retry": RetryPolicy(max_attempts=limits.retry_max_attempts, deadline=limits.retry_deadline,
                             lockout_wait=limits.lockout_seconds),
        "timeout": (limits.connect_timeout, limits.read_timeout),
        "reference_ttl": limits.reference_cache_seconds,
    }
    options.update(overrides)
    return ZohoClient(**options)


def get_zoho_client() -> ZohoClient:
    """This process's client for the current settings (read now; a settings change gets a new client)."""
    conf = get_zoho_settings()
    with _lock:
        client = _clients.get(conf)
        if client is None:
            for old in _clients.values():
                old.close()
            _clients.clear()
            client = _clients[conf] = client_build(conf)
        return client


def forget_clients(*, close: bool = True) -> None:
    """Drop this process's clients (and the tokens they hold): the next get_zoho_client() builds afresh. A forked
    child passes close=False: the connections it inherited are its parent's to close."""
    with _lock:
        for client in _clients.values() if close else ():
            client.close()
        _clients.clear()
