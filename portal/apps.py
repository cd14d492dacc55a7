from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class PortalConfig(AppConfig):
    """Wiring only: project-wide checks and management commands (demo, wix_sandbox)."""

    name = "portal"
    verbose_name = "Portal"
    default = True

    def ready(self) -> None:
        from django.contrib import admin

        from . import checks  # noqa: F401  (registers system checks)
        from .admin.security import restrict_security_admins

        # The admin site has autodiscovered every app's admin module by now (its app
        # config comes first in INSTALLED_APPS).
        restrict_security_admins(admin.site)


class PortalAdminConfig(admin_apps.AdminConfig):
    """Django's admin with the portal's site: its header and the dashboard on the index.

    Listed in INSTALLED_APPS in place of "django.contrib.admin".
    """

    default = False
    default_site = "portal.sites.PortalAdminSite"
