"""Build a `WixClient` for a tenant from its stored credentials and the settings.

The one place where Django settings meet `wixapi`: settings are read on every call, so a
changed `WIX_API_BASE_URL` (the sandbox in tests and the demo) takes effect at once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from django.conf import settings
from django.views.decorators.debug import sensitive_variables

from tenants.fields import reveal
from tenants.ratelimit import budget_for
from wixapi.client import ApiKeyAuth, Auth, OAuthAppAuth, RetryPolicy, WixClient

if TYPE_CHECKING:
    from .models import Tenant, WixApp


def retry_policy() -> RetryPolicy:
    return RetryPolicy(
        max_retries=settings.WIX_MAX_RETRIES,
        backoff_factor=settings.WIX_BACKOFF_SECONDS,
        retry_after_max=settings.WIX_RETRY_AFTER_MAX_SECONDS,
    )


def make_client(
    auth: Auth | None = None, *, before_request: Callable[[], None] | None = None
) -> WixClient:
    """Return a client for Wix (or the sandbox) as configured, with the given credentials."""
    return WixClient(
        settings.WIX_API_BASE_URL,
        auth=auth,
        timeout=settings.WIX_TIMEOUT_SECONDS,
        connect_timeout=settings.WIX_CONNECT_TIMEOUT_SECONDS,
        retry=retry_policy(),
        before_request=before_request,
    )


@sensitive_variables()
def auth_for(tenant: Tenant) -> Auth:
    """Return the credentials that reach the tenant's site; decrypts its secret.

    Raises `tenants.crypto.DecryptionError` when no configured key opens the stored secret.
    """
    app: WixApp | None = tenant.wix_app
    if app is not None:
        return OAuthAppAuth(
            app_id=app.app_id, app_secret=reveal(app.app_secret), instance_id=tenant.instance_id
        )
    return ApiKeyAuth(api_key=reveal(tenant.api_key), site_id=tenant.site_id)


def client_for(tenant: Tenant) -> WixClient:
    """Return a client that speaks to the tenant's site within the site's request budget."""
    return make_client(auth_for(tenant), before_request=budget_for(tenant.site_id))
