from django.apps import AppConfig
from django.core import checks


class ConnectionsConfig(AppConfig):
    name = "connections"
    verbose_name = "Calendar connections"

    def ready(self) -> None:
        from .checks import check_wix_api_base_url

        checks.register(check_wix_api_base_url)
