"""Zoho Billing HTTP client (issue #4). `codes` is shared with the sandbox."""
