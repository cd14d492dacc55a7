from django.apps import AppConfig
from django.core import checks


class TenantsConfig(AppConfig):
    name = "tenants"
    verbose_name = "Tenants"

    def ready(self):
        from tenants.checks import check_encryption_keys

        checks.register(check_encryption_keys, checks.Tags.security)
