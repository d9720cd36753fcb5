"""The project's admin site: Django's, with the sync dashboard as its first page after the index."""

from __future__ import annotations

from django.contrib import admin
from django.urls import path


class SyncAdminSite(admin.AdminSite):
    site_header = "Zoho Billing sync"
    site_title = "Zoho Billing sync"
    index_title = "Billing records and their sync with Zoho"
    index_template = "admin/sync_index.html"
    # The changelists need the width (the sync state, a short error and the Zoho id at 1,400 px); the index and
    # the breadcrumbs lead everywhere the sidebar did.
    enable_nav_sidebar = False

    def get_urls(self):
        from monitoring.admin_views import dashboard

        return [path("dashboard/", self.admin_view(dashboard), name="sync_dashboard"), *super().get_urls()]
