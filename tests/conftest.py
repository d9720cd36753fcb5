"""Shared fixtures: the test settings and, from the sandbox issue on, a local Zoho sandbox."""

pytest_plugins = ["tests.sandbox_fixtures"]
