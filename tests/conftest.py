"""Shared fixtures: the test settings and, from the sandbox issue on, a local Zoho sandbox."""

pytest_plugins = ["tests.sandbox_fixtures"]


import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def fresh_zoho_clients():
    """Each test starts with no client held over from another test (they hold tokens the sandbox forgot)."""
    from zoho_sync.zoho import forget_clients

    forget_clients()
    yield
    forget_clients()
