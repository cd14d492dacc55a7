"""System checks: a production portal must talk to the real Wix."""

from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Warning

WIX_HOST = "www.wixapis.com"


def check_wix_api_base_url(app_configs=None, **kwargs):
    """Warn when DEBUG is off and Wix calls go anywhere but Wix (e.g. the sandbox)."""
    url = settings.WIX_API_BASE_URL
    parts = urlsplit(url)
    if settings.DEBUG or (parts.scheme == "https" and parts.hostname == WIX_HOST):
        return []
    return [
        Warning(
            f"WIX_API_BASE_URL is {url!r}, not https://{WIX_HOST}, while DEBUG is off.",
            hint="Unset WIX_API_BASE_URL in production; point it at the sandbox only in "
            "development and tests.",
            id="connections.W001",
        )
    ]
