"""The portal's admin site: Django's admin with its own header and a dashboard on the index.

Installed through `portal.apps.PortalAdminConfig`, so `django.contrib.admin.site` is this
site and every `@admin.register` lands here.
"""

from __future__ import annotations

from django.contrib import admin

from . import dashboard


class PortalAdminSite(admin.AdminSite):
    site_header = "Calendar Connections Portal"
    site_title = "Calendar Connections Portal"
    index_title = "Dashboard"
    # The connection list needs the width; breadcrumbs and the index lead everywhere.
    enable_nav_sidebar = False

    def index(self, request, extra_context=None):
        """The app list, with the dashboard of the tenants the user can see above it."""
        context = {"dashboard": dashboard.build(request.user), **(extra_context or {})}
        return super().index(request, extra_context=context)
