"""/health/: the product's status (the cheap checks, Zoho connectivity as last stored) as JSON, 200 when healthy or
degraded, 503 when unhealthy: for monitors, and the same status as the dashboard and zoho_health_check.
/health/live/: this process serves and its database answers (200, else 503): for load balancers and container
health checks, which must not take the admin away while Zoho is down, the moment operators need it most."""

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


@never_cache
@require_GET
def live(request):
    from django.db import DatabaseError, connection

    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as error:
        return JsonResponse({"status": "down", "why": f"the database does not answer ({type(error).__name__})"},
                            status=503)
    return JsonResponse({"status": "alive"})


@never_cache
@require_GET
def metrics(request):
    """Prometheus' text format; 404 unless MONITORING_PROMETHEUS_ENABLED, 401 without the configured credentials."""
    import base64
    import hmac

    from django.http import Http404, HttpResponse
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

    from monitoring.conf import get_monitoring_settings
    from monitoring.prometheus import SyncCollector

    conf = get_monitoring_settings()
    if not conf.prometheus_enabled:
        raise Http404("Prometheus metrics are off (MONITORING_PROMETHEUS_ENABLED).")
    if conf.prometheus_username:
        expected = base64.b64encode(f"{conf.prometheus_username}:{conf.prometheus_password}".encode()).decode()
        given = request.headers.get("Authorization", "").removeprefix("Basic ").strip()
        if not hmac.compare_digest(given.encode(), expected.encode()):
            response = HttpResponse("Credentials required.", status=401)
            response["WWW-Authenticate"] = 'Basic realm="zoho-sync metrics"'
            return response
    registry = CollectorRegistry()
    registry.register(SyncCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
