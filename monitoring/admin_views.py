"""The sync dashboard inside the admin (behind its login): the morning questions on one page, refreshed in place
every 30 seconds (the fragment alone, `?partial=1`), the refresh pausable. Display only: it reads
monitoring.dashboard and links to the pages whose actions change data."""

from __future__ import annotations

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse

from monitoring.dashboard import PERIODS, dashboard_read
from zoho_sync.admin import can_sync
from zoho_sync.entities import BY_NAME, SPECS
from zoho_sync.models import SyncLog

REFRESH_SECONDS = 30


def can_view_dashboard(request) -> bool:
    user = request.user
    return can_sync(request) or user.has_perm("zoho_sync.view_syncfailure") or user.has_perm("zoho_sync.view_synclog")


def dashboard(request):
    if not can_view_dashboard(request):
        raise PermissionDenied
    entity = request.GET.get("entity", "")
    status = request.GET.get("status", "")
    period = request.GET.get("period", "24h")
    data = dashboard_read(entity=entity if entity in BY_NAME else "",
                          status=status if status in SyncLog.Status.values else "",
                          period=period if period in PERIODS else "24h")
    try:
        refresh = max(1, int(request.GET.get("refresh", REFRESH_SECONDS)))
    except ValueError:
        refresh = REFRESH_SECONDS
    context = {
        **admin.site.each_context(request),
        "title": "Sync dashboard",
        "d": data,
        "can_sync": can_sync(request),
        "refresh_seconds": refresh,
        "entities": [(spec.name, spec.name.replace("_", " ")) for spec in SPECS],
        "statuses": SyncLog.Status.choices,
        "periods": list(PERIODS),
    }
    template = "admin/sync_dashboard_content.html" if request.GET.get("partial") else "admin/sync_dashboard.html"
    return TemplateResponse(request, template, context)
