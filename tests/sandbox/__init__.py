"""Tests of the local Zoho Billing sandbox (zoho_sync/sandbox/), over real HTTP."""
