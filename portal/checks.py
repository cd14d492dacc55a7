"""System checks for settings that must never reach production as their dev defaults."""

from django.conf import settings
from django.core.checks import Error, register


@register(deploy=True)
def check_secret_key(app_configs=None, **kwargs):
    """`check --deploy` refuses the placeholder SECRET_KEY while DEBUG is off."""
    if settings.DEBUG or settings.SECRET_KEY != settings.INSECURE_DEV_SECRET_KEY:
        return []
    return [
        Error(
            "SECRET_KEY is the development placeholder while DEBUG is off.",
            hint="Set SECRET_KEY in the environment (a long random string).",
            id="portal.E001",
        )
    ]
