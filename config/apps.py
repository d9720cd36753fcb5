from django.contrib.admin.apps import AdminConfig


class SyncAdminConfig(AdminConfig):
    """django.contrib.admin with the project's site (config.admin.SyncAdminSite) as `admin.site`."""

    default_site = "config.admin.SyncAdminSite"
