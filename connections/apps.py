from django.apps import AppConfig


class ConnectionsConfig(AppConfig):
    name = "connections"
    verbose_name = "Calendar connections"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers system checks)
