from django.apps import AppConfig


class PortalConfig(AppConfig):
    """Wiring only: project-wide checks and management commands (demo, wix_sandbox)."""

    name = "portal"
    verbose_name = "Portal"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers system checks)
