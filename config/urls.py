"""URL configuration: the Django admin is the dashboard."""

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("monitoring.urls")),
    path("", include("zoho_sync.urls")),
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
]
