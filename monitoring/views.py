"""/health/: the cheap checks as JSON, 200 when healthy or degraded, 503 when unhealthy (for load balancers)."""

from __future__ import annotations

from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from monitoring.checks import UNHEALTHY, health_run


@never_cache
@require_GET
def health(request):
    report = health_run(cheap_only=True)
    body = report.as_dict(details=False)  # counts and hosts stay for operators (zoho_health_check --detailed)
    return JsonResponse(body, status=503 if report.status == UNHEALTHY else 200)
