"""The portal's admin site: Django's admin with its own header and a dashboard on the index.

Installed through `portal.apps.PortalAdminConfig`, so `django.contrib.admin.site` is this
site and every `@admin.register` lands here. It lives apart from `portal.admin`, whose modules
register models: the site must be importable before anything registers on it.
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.contenttypes import views as contenttype_views
from django.core.exceptions import ValidationError
from django.http import Http404
from django.urls import path

from . import dashboard, two_factor
from .two_factor_views import PortalLoginForm, enrolment


class PortalAdminSite(admin.AdminSite):
    site_header = "Calendar Connections Portal"
    site_title = "Calendar Connections Portal"
    index_title = "Dashboard"
    # The connection list needs the width; breadcrumbs and the index lead everywhere.
    enable_nav_sidebar = False
    # Asks for the second factor of users who have one (portal.two_factor).
    login_template = "admin/portal_login.html"
    login_form = PortalLoginForm

    def has_permission(self, request):
        """Staff, and past their second factor when they have one."""
        return super().has_permission(request) and two_factor.session_is_verified(request)

    def get_urls(self):
        urls = [
            path(
                "two-factor/",
                self.admin_view(enrolment),
                {"admin_site": self},
                name="two_factor",
            ),
            # In place of Django's own, which lets a malformed id (a Job's is a UUID) raise.
            path(
                "r/<int:content_type_id>/<path:object_id>/",
                self.admin_view(view_on_site),
                name="view_on_site",
            ),
        ]
        return urls + super().get_urls()

    def index(self, request, extra_context=None):
        """The app list, with the dashboard of the tenants the user can see above it."""
        context = {"dashboard": dashboard.build(request.user), **(extra_context or {})}
        return super().index(request, extra_context=context)


def view_on_site(request, content_type_id, object_id):
    """Django's "view on site" redirect; an id that is not one of the model's is a 404."""
    try:
        return contenttype_views.shortcut(request, content_type_id, object_id)
    except ValidationError:
        raise Http404("No such object.") from None
