"""Small filters the sync pages print numbers with (no dependency on django.contrib.humanize's locale machinery)."""

from __future__ import annotations

from django import template
from django.urls import reverse

from zoho_sync.entities import BY_NAME

register = template.Library()


@register.filter
def thousands(value) -> str:
    try:
        return f"{int(value):,}"
    except (TypeError, ValueError):
        return str(value)


@register.filter
def percent(value) -> str:
    """A share as a percentage with one decimal; "n/a" when there was nothing to divide."""
    if value is None:
        return "n/a"
    return f"{float(value):.1%}"


def _admin_url(entity: str, view: str, pk) -> str:
    opts = BY_NAME[entity].model._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_{view}", args=[pk])


@register.simple_tag
def record_url(failure) -> str:
    return _admin_url(failure.entity, "change", failure.record_id)


@register.simple_tag
def push_url(failure) -> str:
    return _admin_url(failure.entity, "push", failure.record_id)
